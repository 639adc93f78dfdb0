# tests/integration/lib.sh - sourced by every integration test script.
#
# Gives each script: strict mode, a private temp dir $T (removed on exit,
# kept when KEEP_T=1), real services on 127.0.0.1 with free ports
# (docker-registry in plain/tls/tls-basic/token mode, the token server, the
# fault proxy), and small assertions that print what differed.
#
# Convention: every check prints "ok - <name>" (pass); the first failure
# prints "FAIL: ..." with expected and actual values and exits 1.
# Exit 77 means skipped: only when a required tool is not installed.

# Sourced twice, it would make a second $T and orphan the first one's services.
[ -n "${PLAIT_LIB_LOADED:-}" ] && return 0
PLAIT_LIB_LOADED=1

set -Eeuo pipefail
shopt -s inherit_errexit 2>/dev/null || true

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
PLAIT=${PLAIT:-${PLAIT_SRCDIR:-$LIB_DIR/../..}/build/cmd/plait}
PLAIT_SRCDIR=${PLAIT_SRCDIR:-$(cd "$LIB_DIR/../.." && pwd)}
export PLAIT PLAIT_SRCDIR

T=$(mktemp -d "${TMPDIR:-/tmp}/plait-it.XXXXXX")
export T
mkdir -p "$T/certs.d" "$T/skopeo-certs" "$T/docker"
export CERTS_DIR=$T/certs.d
# Keep plait and skopeo away from the user's credentials.
export DOCKER_CONFIG=$T/docker
# (Not REGISTRY_AUTH_FILE: docker-registry reads REGISTRY_* as its config.)
export XDG_RUNTIME_DIR=$T/xdg
mkdir -p "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

LIB_PIDS=()
LIB_MOUNTS=() # mount points a test made: detached at exit, before $T goes
declare -A LIB_HOST_MODE=()   # host:port -> plain|tls

lib_cleanup() {
	local rc=$?
	set +e
	trap - ERR
	local pid
	for pid in "${LIB_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${LIB_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		lib_dump_logs >&2
	fi
	for pid in "${LIB_MOUNTS[@]}"; do
		umount -l "$pid" 2>/dev/null
	done
	if [ "${KEEP_T:-0}" = 1 ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap lib_cleanup EXIT
trap 'lib_on_err $? "$BASH_COMMAND"' ERR

lib_on_err() {
	# Only the first (innermost) report matters; set -e exits after it.
	[ -n "${LIB_ERR_REPORTED:-}" ] && return 0
	LIB_ERR_REPORTED=1
	echo "FAIL: command exited $1: $2" >&2
	local i
	for ((i = 1; i < ${#FUNCNAME[@]}; i++)); do
		echo "  at ${BASH_SOURCE[i]}:${BASH_LINENO[i - 1]} (${FUNCNAME[i]})" >&2
	done
}

# Tail of each service log, so a failed run shows what the services saw.
lib_dump_logs() {
	local f
	for f in "$T"/*.log; do
		[ -f "$f" ] || continue
		echo "---- tail $(basename "$f")"
		tail -n 15 "$f"
	done
}

# ---------------------------------------------------------------- asserts

fail() {
	echo "FAIL: $*" >&2
	LIB_ERR_REPORTED=1
	exit 1
}

pass() {
	echo "ok - $*"
}

skip() {
	echo "SKIP: $*"
	exit 77
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "'$c' is not installed"
	done
}

require_plait() {
	[ -x "$PLAIT" ] || fail "plait binary '$PLAIT' does not exist or is not executable (set PLAIT)"
}

assert_eq() {
	local exp=$1 act=$2 what=${3:-value}
	if [ "$exp" != "$act" ]; then
		fail "$what differs
  expected: $(printf '%q' "$exp")
  actual:   $(printf '%q' "$act")"
	fi
}

assert_ne() {
	local a=$1 b=$2 what=${3:-value}
	[ "$a" != "$b" ] || fail "$what: both are $(printf '%q' "$a"), expected them to differ"
}

assert_contains() {
	local hay=$1 needle=$2 what=${3:-output}
	case "$hay" in
	*"$needle"*) ;;
	*) fail "$what does not contain $(printf '%q' "$needle")
  actual: $hay" ;;
	esac
}

assert_not_contains() {
	local hay=$1 needle=$2 what=${3:-output}
	case "$hay" in
	*"$needle"*) fail "$what contains $(printf '%q' "$needle") but must not
  actual: $hay" ;;
	esac
}

# assert_match STRING ERE [what]
assert_match() {
	local s=$1 re=$2 what=${3:-output}
	[[ $s =~ $re ]] || fail "$what does not match /$re/
  actual: $s"
}

# assert_file_mode FILE MODE(octal, e.g. 600) [what]
assert_file_mode() {
	local f=$1 exp=$2 what=${3:-mode of $1}
	[ -e "$f" ] || fail "$what: '$f' does not exist"
	assert_eq "$exp" "$(stat -c %a "$f")" "$what"
}

assert_file_exists() {
	[ -e "$1" ] || fail "${2:-file} '$1' does not exist"
}

assert_file_absent() {
	[ ! -e "$1" ] || fail "${2:-file} '$1' exists but must not"
}

# run_ok CMD... : run, capture stdout in $OUT and stderr in $ERR; fail with
# both shown when the command does not exit 0. $OUT loses trailing newlines
# like any $(...); the exact bytes stay in $OUT_FILE until the next run_*.
run_ok() {
	lib_run "$@"
	if [ "$RC" != 0 ]; then
		fail "command failed (exit $RC${LIB_TIMED_OUT:+, killed after $CMD_TIMEOUT s}): $*
  stdout: $OUT
  stderr: $ERR"
	fi
}

# Commands (not shell functions) run under timeout(1): a hung plait fails
# its check instead of the whole script hitting meson's limit. KILL follows
# TERM after 10 s for a process that does not stop on TERM.
CMD_TIMEOUT=${CMD_TIMEOUT:-180}
lib_run() {
	local o=$T/.run.out e=$T/.run.err
	OUT_FILE=$o
	RC=0
	LIB_TIMED_OUT=
	if [ "$(type -t "$1")" = file ]; then
		timeout -k 10 "$CMD_TIMEOUT" "$@" >"$o" 2>"$e" || RC=$?
		if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
			LIB_TIMED_OUT=1
		fi
	else
		"$@" >"$o" 2>"$e" || RC=$?
	fi
	OUT=$(cat "$o")
	ERR=$(cat "$e")
}

# run_expect_fail CMD... : the command must fail; stdout in $OUT, stderr in
# $ERR, exit code in $RC.
run_expect_fail() {
	lib_run "$@"
	if [ -n "$LIB_TIMED_OUT" ]; then
		fail "command did not finish within $CMD_TIMEOUT s (expected it to fail): $*
  stdout: $OUT
  stderr: $ERR"
	fi
	if [ "$RC" = 0 ]; then
		fail "command succeeded but was expected to fail: $*
  stdout: $OUT
  stderr: $ERR"
	fi
}

# expect_rc N : after run_expect_fail, check the exit code.
expect_rc() {
	assert_eq "$1" "$RC" "exit code of the last command (stderr: $ERR)"
}

sha256_file() {
	sha256sum "$1" | cut -d' ' -f1
}

sha256_stdin() {
	sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------- ports

free_port() {
	"$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# bg_start LOGNAME CMD... : start a background process tracked for cleanup;
# output goes to $T/LOGNAME.log. Sets BG_PID.
bg_start() {
	local log=$1
	shift
	"$@" >"$T/$log.log" 2>&1 &
	BG_PID=$!
	LIB_PIDS+=("$BG_PID")
}

# wait_http URL [curl args...] : wait up to 20 s for any HTTP answer.
wait_http() {
	local url=$1
	shift
	local i code
	for i in $(seq 1 200); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url" 2>/dev/null || true)
		if [ -n "$code" ] && [ "$code" != 000 ]; then
			return 0
		fi
		sleep 0.1
	done
	fail "service at $url did not answer within 20 s"
}

# ---------------------------------------------------------------- TLS

# The test CA, made once per test run.
ca_init() {
	[ -f "$T/ca/ca.crt" ] && return 0
	mkdir -p "$T/ca"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-keyout "$T/ca/ca.key" -out "$T/ca/ca.crt" \
		-subj "/CN=plait test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 ||
		fail "openssl could not create the test CA"
}

# server_cert DIR : server.key + server.crt for 127.0.0.1 / localhost.
server_cert() {
	local d=$1
	ca_init
	mkdir -p "$d"
	openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" \
		-out "$d/server.csr" -subj "/CN=127.0.0.1" >/dev/null 2>&1 ||
		fail "openssl could not create a server key"
	cat >"$d/ext.cnf" <<-EOF
	basicConstraints=CA:FALSE
	keyUsage=critical,digitalSignature,keyEncipherment
	extendedKeyUsage=serverAuth
	subjectAltName=IP:127.0.0.1,DNS:localhost
	EOF
	openssl x509 -req -in "$d/server.csr" -CA "$T/ca/ca.crt" \
		-CAkey "$T/ca/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/ext.cnf" -out "$d/server.crt" >/dev/null 2>&1 ||
		fail "openssl could not sign the server certificate"
}

# ssh_client_root DIR : Debian's ssh client and the libraries it loads
# under DIR (usr/bin/ssh and each library at its own path), for an image
# whose RUN logs in somewhere.
ssh_client_root() {
	local lib
	mkdir -p "$1/usr/bin"
	cp /usr/bin/ssh "$1/usr/bin/ssh"
	for lib in $(ldd /usr/bin/ssh | grep -o '/[^ ]*'); do
		mkdir -p "$1$(dirname "$lib")"
		cp -L "$lib" "$1$lib"
	done
}

# wait_until SECONDS CMD... : 0 once CMD succeeds (tried every 0.1 s), 1 after SECONDS.
wait_until() {
	local secs=$1 i
	shift
	for i in $(seq 1 $((secs * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
proc_running() { pgrep -f "$1" >/dev/null; }
proc_gone() { ! pgrep -f "$1" >/dev/null; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# wait_proc PATTERN SECONDS : 0 once a process matches PATTERN (pgrep -f), 1 after SECONDS.
wait_proc() { wait_until "$2" proc_running "$1"; }
# wait_proc_gone PATTERN SECONDS : 0 once no process matches PATTERN, 1 after SECONDS.
wait_proc_gone() { wait_until "$2" proc_gone "$1"; }
# wait_pid_gone PID SECONDS : 0 once PID has exited, 1 after SECONDS.
wait_pid_gone() { wait_until "$2" pid_gone "$1"; }

# wait_log PID LOG TEXT SECONDS WHAT : until LOG holds TEXT (a fixed
# string); fails naming WHAT when PID exits first or SECONDS pass.
wait_log() {
	local i
	for i in $(seq 1 $(($4 * 10))); do
		grep -qF "$3" "$2" && return 0
		kill -0 "$1" 2>/dev/null || fail "plait exited before $5: $(cat "$2")"
		sleep 0.1
	done
	grep -qF "$3" "$2" || fail "$5 did not happen within $4 s: $(cat "$2")"
}

# ---------------------------------------------------------------- registry

# registry_start NAME [plain|tls|tls-basic|token]
# Exports NAME_HOST (127.0.0.1:PORT), NAME_MODE, NAME_URL, NAME_DIR
# (storage), NAME_LOG; tls-basic and token also NAME_USER / NAME_PASS;
# token also NAME_TOKEN_HOST, NAME_TOKEN_LOG.
# Token server options (e.g. --lifetime 3) come from TOKEN_ARGS.
registry_start() {
	local name=$1 mode=${2:-plain}
	require_cmd docker-registry curl openssl
	local port dir=$T/reg-$name
	port=$(free_port)
	local host=127.0.0.1:$port
	mkdir -p "$dir/data"
	local scheme=http tls_cfg="" auth_cfg="" curl_args=()

	case "$mode" in
	plain | token) ;;
	tls | tls-basic)
		server_cert "$dir/tls"
		scheme=https
		tls_cfg="  tls:
    certificate: $dir/tls/server.crt
    key: $dir/tls/server.key"
		mkdir -p "$CERTS_DIR/$host" "$T/skopeo-certs/$host"
		cp "$T/ca/ca.crt" "$CERTS_DIR/$host/ca.crt"
		cp "$T/ca/ca.crt" "$T/skopeo-certs/$host/ca.crt"
		curl_args=(--cacert "$T/ca/ca.crt")
		;;
	*) fail "registry_start: unknown mode '$mode'" ;;
	esac

	if [ "$mode" = tls-basic ] || [ "$mode" = token ]; then
		local pass
		pass=$(openssl rand -hex 12)
		printf -v "${name}_USER" '%s' alice
		printf -v "${name}_PASS" '%s' "p-$pass"
		export "${name}_USER" "${name}_PASS"
	fi

	if [ "$mode" = tls-basic ]; then
		require_cmd htpasswd
		htpasswd -Bbn alice "p-$pass" >"$dir/htpasswd" 2>/dev/null ||
			fail "htpasswd failed"
		auth_cfg="auth:
  htpasswd:
    realm: plait-test
    path: $dir/htpasswd"
	fi

	if [ "$mode" = token ]; then
		local tport
		tport=$(free_port)
		mkdir -p "$dir/token"
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
			-keyout "$dir/token/key.pem" -out "$dir/token/cert.pem" \
			-subj "/CN=plait test token signer" >/dev/null 2>&1 ||
			fail "openssl could not create the token signing key"
		printf 'alice:%s\n' "$(printf '%s' "p-$pass" | sha256sum | cut -d' ' -f1)" \
			>"$dir/token/users"
		: >"$T/$name-token.log"
		# shellcheck disable=SC2086
		bg_start "$name-tokenserver" "$PY" "$LIB_DIR/tokenserver.py" \
			--port "$tport" --key "$dir/token/key.pem" \
			--cert "$dir/token/cert.pem" --users "$dir/token/users" \
			--issuer plait-test-issuer --service plait-test \
			--log "$T/$name-token.log" ${TOKEN_ARGS:-}
		wait_http "http://127.0.0.1:$tport/"
		printf -v "${name}_TOKEN_HOST" '%s' "127.0.0.1:$tport"
		printf -v "${name}_TOKEN_LOG" '%s' "$T/$name-token.log"
		printf -v "${name}_TOKEN_PID" '%s' "$BG_PID"
		export "${name}_TOKEN_HOST" "${name}_TOKEN_LOG" "${name}_TOKEN_PID"
		auth_cfg="auth:
  token:
    realm: http://127.0.0.1:$tport/token
    service: plait-test
    issuer: plait-test-issuer
    rootcertbundle: $dir/token/cert.pem"
	fi

	cat >"$dir/config.yml" <<-EOF
	version: 0.1
	log:
	  level: info
	  accesslog:
	    disabled: false
	storage:
	  filesystem:
	    rootdirectory: $dir/data
	  delete:
	    enabled: true
	  maintenance:
	    uploadpurging:
	      enabled: false
	http:
	  addr: $host
	  secret: plait-test-secret-$port
	$tls_cfg
	$auth_cfg
	EOF
	# The heredoc's indentation is tabs (stripped); the embedded multi-line
	# strings keep their spaces.
	# docker-registry takes REGISTRY_* variables as config overrides.
	# shellcheck disable=SC2046 # one "-u NAME" pair per variable
	bg_start "$name-registry" env $(env | sed -n 's/^\(REGISTRY_[A-Za-z0-9_]*\)=.*/-u \1/p') \
		docker-registry serve "$dir/config.yml"
	printf -v "${name}_PID" '%s' "$BG_PID"
	wait_http "$scheme://$host/v2/" "${curl_args[@]}"
	if ! kill -0 "$BG_PID" 2>/dev/null; then
		fail "docker-registry '$name' exited; see $T/$name-registry.log"
	fi

	LIB_HOST_MODE[$host]=$([ "$scheme" = https ] && echo tls || echo plain)
	printf -v "${name}_HOST" '%s' "$host"
	printf -v "${name}_MODE" '%s' "$mode"
	printf -v "${name}_URL" '%s' "$scheme://$host"
	printf -v "${name}_DIR" '%s' "$dir/data"
	printf -v "${name}_LOG" '%s' "$T/$name-registry.log"
	export "${name}_HOST" "${name}_MODE" "${name}_URL" "${name}_DIR" \
		"${name}_LOG" "${name}_PID"
}

# registry_curl NAME CURL_ARGS... PATH : curl against a started registry with
# its CA and (tls-basic) credentials. PATH is like /v2/repo/manifests/tag.
registry_curl() {
	local name=$1
	shift
	local url_var=${name}_URL mode_var=${name}_MODE
	local args=(-sS)
	case "${!mode_var}" in
	tls) args+=(--cacert "$T/ca/ca.crt") ;;
	tls-basic)
		local u=${name}_USER p=${name}_PASS
		args+=(--cacert "$T/ca/ca.crt" -u "${!u}:${!p}")
		;;
	esac
	local last=${*: -1}
	local rest=("${@:1:$#-1}")
	curl "${args[@]}" "${rest[@]}" "${!url_var}$last"
}

# ---------------------------------------------------------------- proxy

# sshd_start DIR [sshd_config lines...] : Debian's sshd on a free loopback
# port, root logins with the key DIR/id only (DIR/host_key, DIR/id,
# DIR/authorized_keys, DIR/sshd_config are made; extra config lines are
# appended). Sets SSHD_PORT; fails when it does not listen.
sshd_start() {
	local dir=$1 l _
	shift
	[ -x /usr/sbin/sshd ] || skip "/usr/sbin/sshd is missing: apt-get install openssh-server"
	[ "$(id -u)" = 0 ] || skip "sshd logs in as root here (it needs root for its privilege separation)"
	mkdir -p /run/sshd "$dir"
	chmod 700 "$dir"
	ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" -C plait-test-host
	ssh-keygen -q -t ed25519 -N '' -f "$dir/id" -C plait-test-user
	cp "$dir/id.pub" "$dir/authorized_keys"
	SSHD_PORT=$(free_port)
	printf '%s\n' "ListenAddress 127.0.0.1:$SSHD_PORT" "HostKey $dir/host_key" "PidFile $dir/sshd.pid" \
		"AuthorizedKeysFile $dir/authorized_keys" "PermitRootLogin prohibit-password" \
		"PasswordAuthentication no" "KbdInteractiveAuthentication no" "UsePAM no" "StrictModes no" \
		"LogLevel VERBOSE" "$@" >"$dir/sshd_config"
	bg_start sshd /usr/sbin/sshd -D -e -f "$dir/sshd_config"
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	fail "sshd did not listen on 127.0.0.1:$SSHD_PORT (log: $(cat "$T/sshd.log"))"
}

# refproxy_start UPSTREAM_HOST : referrersproxy.py (the Referrers API) in
# front of a plain registry; sets P_HOST, its stats in $T/refproxy-stats.json.
refproxy_start() {
	local port
	port=$(free_port)
	bg_start refproxy "$PY" "$LIB_DIR/referrersproxy.py" --port "$port" \
		--upstream "http://$1" --stats "$T/refproxy-stats.json"
	wait_http "http://127.0.0.1:$port/referrersproxy/health"
	P_HOST=127.0.0.1:$port
	LIB_HOST_MODE[$P_HOST]=plain
}

# faultproxy_start NAME UPSTREAM_HOST [faultproxy flags...]
# Exports NAME_HOST (the proxy's 127.0.0.1:PORT), NAME_STATS (JSON file).
faultproxy_start() {
	local name=$1 upstream=$2
	shift 2
	local port
	port=$(free_port)
	bg_start "$name-proxy" "$PY" "$LIB_DIR/faultproxy.py" --port "$port" \
		--upstream "http://$upstream" --stats "$T/$name-stats.json" "$@"
	printf -v "${name}_PID" '%s' "$BG_PID"
	wait_http "http://127.0.0.1:$port/faultproxy/health"
	LIB_HOST_MODE[127.0.0.1:$port]=plain
	printf -v "${name}_HOST" '%s' "127.0.0.1:$port"
	printf -v "${name}_STATS" '%s' "$T/$name-stats.json"
	export "${name}_HOST" "${name}_STATS" "${name}_PID"
}

# stat_of STATSFILE KEY : a counter from the proxy's stats file (0 if none).
stat_of() {
	"$PY" - "$1" "$2" <<-'EOF'
	import json, sys
	try:
	    d = json.load(open(sys.argv[1]))
	except FileNotFoundError:
	    d = {}
	print(d.get(sys.argv[2], 0))
	EOF
}

# ---------------------------------------------------------------- skopeo

# The skopeo TLS flags for one docker:// reference: --tls-verify=false for
# plain registries, a cert dir holding the CA for TLS ones. PREFIX is "" or
# "src-" / "dest-".
skopeo_tls_flags() {
	local prefix=$1 ref=$2
	local name=${ref#docker://}
	local host=${name%%/*}
	case "${LIB_HOST_MODE[$host]:-plain}" in
	tls) echo "--${prefix}cert-dir=$T/skopeo-certs/$host" ;;
	*) echo "--${prefix}tls-verify=false" ;;
	esac
}

# skopeo_reg SUBCOMMAND ARGS... : skopeo with the right TLS options added for
# each docker:// argument (copy: first is the source, second the dest).
skopeo_reg() {
	require_cmd skopeo
	local sub=$1
	shift
	local a flags=() refs=()
	# Positional image names always carry a transport, option values do not,
	# so this finds SRC and DST whatever options surround them.
	for a in "$@"; do
		case "$a" in
		docker://* | oci:* | oci-archive:* | dir:* | docker-archive:*) refs+=("$a") ;;
		esac
	done
	if [ "$sub" = copy ]; then
		case "${refs[0]:-}" in docker://*) flags+=("$(skopeo_tls_flags src- "${refs[0]}")") ;; esac
		case "${refs[1]:-}" in docker://*) flags+=("$(skopeo_tls_flags dest- "${refs[1]}")") ;; esac
	else
		case "${refs[0]:-}" in docker://*) flags+=("$(skopeo_tls_flags "" "${refs[0]}")") ;; esac
	fi
	skopeo "$sub" "${flags[@]}" "$@"
}

# raw_digest REF : sha256 of `skopeo inspect --raw REF` (REF with transport).
raw_digest() {
	skopeo_reg inspect --raw "$@" | sha256_stdin
}

# ---------------------------------------------------------------- images

# busybox_deb ARCH : the path of a busybox-static .deb for Debian
# architecture ARCH (arm64, armhf, ...), from $MULTI_DEB_DIR or downloaded
# there (the architecture added to dpkg, the lists updated once if the first
# try fails); "" when it cannot be had. The caller skips or fails.
busybox_deb() {
	local a=$1 dir=${MULTI_DEB_DIR:-$T/deb} deb
	mkdir -p "$dir"
	deb=$(find "$dir" -maxdepth 1 -name "busybox-static_*_$a.deb" | sort | head -n1)
	if [ -z "$deb" ]; then
		dpkg --print-foreign-architectures | grep -qx "$a" || dpkg --add-architecture "$a" || return 0
		if ! (cd "$dir" && timeout 120 apt-get download -qq "busybox-static:$a") >>"$T/apt.log" 2>&1; then
			timeout 300 apt-get update -qq >>"$T/apt.log" 2>&1 || true
			(cd "$dir" && timeout 120 apt-get download -qq "busybox-static:$a") >>"$T/apt.log" 2>&1 || true
		fi
		deb=$(find "$dir" -maxdepth 1 -name "busybox-static_*_$a.deb" | sort | head -n1)
	fi
	echo "$deb"
}

# multi_base : an amd64 + arm64 busybox index pushed to a registry R this
# starts (plain): sets REG and BASE; arm64 runs through the QEMU handler
# `plait qemu install` registers. Skips on a host that cannot (not amd64,
# no qemu-user-static, no busybox-static:arm64 to be had).
multi_base() {
	[ "$(uname -m)" = x86_64 ] || skip "the host is $(uname -m): this test expects an amd64 host (arm64 emulated)"
	[ -x /usr/bin/qemu-aarch64-static ] || skip "/usr/bin/qemu-aarch64-static is missing: apt-get install qemu-user-static"
	local deb
	deb=$(busybox_deb arm64)
	[ -n "$deb" ] || skip "could not download busybox-static:arm64: $(tail -n 2 "$T/apt.log" 2>/dev/null)"
	run_ok "$PLAIT" qemu install arm64
	registry_start R plain
	REG=$R_HOST
	bash "$LIB_DIR/mkbase.sh" "$T/bases" multi amd64 "arm64=$deb" >/dev/null
	skopeo_reg copy -q --all "oci:$T/bases:multi" "docker://$REG/base/multi:1"
	BASE=$REG/base/multi:1
}

# mkimage OUTDIR ARGS... : tests/integration/mkimage.py
mkimage() {
	"$PY" "$LIB_DIR/mkimage.py" "$@"
}

# ---------------------------------------------------------------- layouts

# verify_layout_blobs DIR : every blobs/sha256/<hex> file hashes to its name.
verify_layout_blobs() {
	local dir=$1 f name
	[ -d "$dir/blobs/sha256" ] || fail "'$dir' has no blobs/sha256 directory"
	for f in "$dir"/blobs/sha256/*; do
		[ -f "$f" ] || continue
		name=$(basename "$f")
		[[ $name =~ ^[0-9a-f]{64}$ ]] || continue
		assert_eq "$name" "$(sha256_file "$f")" "content hash of blob $f"
	done
}

# blob_names DIR : sorted blob digests (hex) of a layout, temp files left out.
blob_names() {
	find "$1/blobs/sha256" -maxdepth 1 -type f -printf '%f\n' 2>/dev/null |
		grep -E '^[0-9a-f]{64}$' | sort || true
}

# layout_tag_digest DIR TAG : the digest index.json gives for TAG ("" if none).
layout_tag_digest() {
	[ -f "$1/index.json" ] || return 0
	jq -r --arg t "$2" '.manifests[]? |
		select(.annotations["org.opencontainers.image.ref.name"] == $t) |
		.digest' "$1/index.json"
}

# host_platform : os/arch of this machine as OCI names it.
host_platform() {
	case "$(uname -m)" in
	x86_64) echo linux/amd64 ;;
	aarch64 | arm64) echo linux/arm64 ;;
	armv7l) echo linux/arm/v7 ;;
	ppc64le) echo linux/ppc64le ;;
	s390x) echo linux/s390x ;;
	riscv64) echo linux/riscv64 ;;
	*) echo "linux/$(uname -m)" ;;
	esac
}

# ---------------------------------------------------------------- dockerd

# dockerd_start : a private dockerd (Debian's docker.io, with its embedded
# BuildKit) under $T/dockerd: own data root, exec root, pid file and socket,
# no iptables, no bridge, loopback registries insecure. Stopped by PID in
# dockerd_stop (a test sets 'trap dockerd_cleanup EXIT'). `dk ARGS` runs the
# matching client (/usr/bin/docker, or $DOCKER) against it with BuildKit.
DOCKER=${DOCKER:-/usr/bin/docker}
DK_PID=
dk() {
	DOCKER_CONFIG=$T/docker-cli DOCKER_HOST=unix://$T/dockerd/docker.sock \
		DOCKER_BUILDKIT=1 "$DOCKER" "$@"
}
dockerd_start() {
	require_cmd dockerd containerd runc
	[ -x "$DOCKER" ] || skip "docker client '$DOCKER' not found: install Debian's docker.io"
	local dk=$T/dockerd i
	mkdir -p "$dk" "$T/docker-cli"
	echo '{"auths":{}}' >"$T/docker-cli/config.json"
	dockerd --data-root "$dk/data" --exec-root "$dk/exec" --pidfile "$dk/docker.pid" \
		--host "unix://$dk/docker.sock" --iptables=false --ip6tables=false --bridge=none \
		--insecure-registry 127.0.0.0/8 >"$dk/dockerd.log" 2>&1 &
	DK_PID=$!
	for i in $(seq 1 120); do
		dk info >/dev/null 2>&1 && return 0
		kill -0 "$DK_PID" 2>/dev/null || fail "dockerd exited: $(tail -n 5 "$dk/dockerd.log")"
		sleep 0.5
	done
	fail "dockerd did not answer on $dk/docker.sock within 60 s: $(tail -n 5 "$dk/dockerd.log")"
}
# dockerd_cleanup : the EXIT trap of a test that starts dockerd: the daemon
# stopped, then lib_cleanup, the script's exit status kept.
dockerd_cleanup() {
	local rc=$?
	set +e
	trap - ERR
	dockerd_stop
	(exit "$rc")
	lib_cleanup
}
# dockerd_stop : TERM, up to 20 s, then KILL; then unmount what it left
# under $T (its overlay mounts would stop the temp dir's removal).
dockerd_stop() {
	[ -n "$DK_PID" ] || return 0
	kill "$DK_PID" 2>/dev/null || true
	local i m
	for i in $(seq 1 40); do
		kill -0 "$DK_PID" 2>/dev/null || break
		sleep 0.5
	done
	kill -9 "$DK_PID" 2>/dev/null || true
	wait "$DK_PID" 2>/dev/null || true
	DK_PID=
	awk -v d="$T/dockerd" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
