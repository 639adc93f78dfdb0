#!/usr/bin/env bash
# test_attestations.sh - OCI 1.1 referrers: attestations stored as artifact
# manifests with a subject, found through the spec's tag schema fallback in
# docker-registry (which lacks the Referrers API) and through the Referrers
# API that referrersproxy.py adds in front of another docker-registry;
# `plait inspect --attestations` and `plait copy --all` (which carries them,
# and cosign's sha256-HEX.sig tags, unless --no-referrers), checked with curl
# following the spec and with skopeo.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq
require_plait

registry_start A plain
registry_start B plain
registry_start C plain
refproxy_start "$B_HOST"

mkimage "$T/img" --tag v1 --platform linux/amd64 --platform linux/arm64 --layers 1 \
	--layer-size 64K >/dev/null
skopeo_reg copy -q --all "oci:$T/img:v1" "docker://$A_HOST/src/img:v1"
skopeo_reg inspect --raw "docker://$A_HOST/src/img:v1" >"$T/index.json"
INDEX=sha256:$(sha256_file "$T/index.json")
child() { jq -r --arg a "$1" '.manifests[] | select(.platform.architecture == $a) | .digest' "$T/index.json"; }
AMD64=$(child amd64)
ARM64=$(child arm64)
[ -n "$AMD64" ] && [ -n "$ARM64" ] || fail "mkimage index lacks a platform"
child_size() { jq -r --arg d "$1" '.manifests[] | select(.digest == $d) | .size' "$T/index.json"; }

# ------------------------------------------------ a client following the spec
# put_blob URL REPO FILE : monolithic upload (POST, then PUT ?digest=).
put_blob() {
	local url=$1 repo=$2 file=$3 d loc
	d=sha256:$(sha256_file "$file")
	loc=$(curl -sS -D - -o /dev/null -X POST "$url/v2/$repo/blobs/uploads/" |
		tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
	[ -n "$loc" ] || fail "POST blob upload to $url/v2/$repo gave no Location"
	case "$loc" in http*) ;; *) loc=$url$loc ;; esac
	case "$loc" in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
	curl -sSf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$loc" \
		>/dev/null || fail "PUT blob $d to $url/v2/$repo"
}
# push_referrer URL REPO SUBJECT ARTIFACT_TYPE CONTENT_FILE : an artifact
# manifest (OCI image-spec 1.1) by digest, then, as the distribution-spec
# says for a registry without the Referrers API, the sha256-HEX tag's index
# read, extended and put back. Prints the manifest's digest.
EMPTY=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
push_referrer() {
	local url=$1 repo=$2 subject=$3 at=$4 file=$5
	printf '{}' >"$T/empty.json"
	put_blob "$url" "$repo" "$T/empty.json"
	put_blob "$url" "$repo" "$file"
	jq -cn --arg at "$at" --arg e "$EMPTY" --arg ld "sha256:$(sha256_file "$file")" \
		--argjson ls "$(stat -c %s "$file")" --arg sd "$subject" --argjson ss "$(child_size "$subject")" \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
		  artifactType: $at,
		  config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2},
		  layers: [{mediaType: $at, digest: $ld, size: $ls}],
		  subject: {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $sd, size: $ss},
		  annotations: {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}' \
		>"$T/ref.json"
	local d=sha256:$(sha256_file "$T/ref.json")
	curl -sSf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary "@$T/ref.json" "$url/v2/$repo/manifests/$d" >/dev/null ||
		fail "PUT referrer manifest to $url/v2/$repo"
	local tag=sha256-${subject#sha256:}
	curl -sS "$url/v2/$repo/manifests/$tag" -H 'Accept: application/vnd.oci.image.index.v1+json' \
		-o "$T/fallback.json" -w '%{http_code}' >"$T/code"
	[ "$(cat "$T/code")" = 200 ] ||
		echo '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}' \
			>"$T/fallback.json"
	jq -c --arg d "$d" --argjson s "$(stat -c %s "$T/ref.json")" --arg at "$at" \
		'.manifests += [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d,
		   size: $s, artifactType: $at}]' "$T/fallback.json" >"$T/fallback2.json"
	curl -sSf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
		--data-binary "@$T/fallback2.json" "$url/v2/$repo/manifests/$tag" >/dev/null ||
		fail "PUT fallback tag $tag to $url/v2/$repo"
	echo "$d"
}

A_URL=http://$A_HOST
echo '{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"test"}}}' >"$T/prov.json"
echo '{"spdxVersion":"SPDX-2.3","name":"test"}' >"$T/sbom.json"
R1=$(push_referrer "$A_URL" src/img "$AMD64" application/vnd.in-toto+json "$T/prov.json")
R2=$(push_referrer "$A_URL" src/img "$ARM64" application/spdx+json "$T/sbom.json")
# a cosign signature, stored as cosign stores it: under sha256-HEX.sig
put_blob "$A_URL" src/img "$T/empty.json"
jq -cn --arg e "$EMPTY" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
	config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2}, layers: []}' \
	>"$T/sig.json"
SIG=sha256:$(sha256_file "$T/sig.json")
curl -sSf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
	--data-binary "@$T/sig.json" "$A_URL/v2/src/img/manifests/sha256-${AMD64#sha256:}.sig" >/dev/null
pass "referrers pushed to docker-registry by a client following the spec's tag fallback"

# ------------------------------------------------ inspect, tag fallback
run_ok "$PLAIT" inspect --attestations "$A_HOST/src/img:v1"
assert_match "$OUT" "linux/amd64 +referrers-tag +$R1 +application/vnd.in-toto\+json +$AMD64" "inspect --attestations"
assert_match "$OUT" "linux/arm64 +referrers-tag +$R2 +application/spdx\+json +$ARM64" "inspect --attestations"
pass "inspect --attestations finds the tag fallback's referrers per platform"

run_ok "$PLAIT" inspect --attestations --platform linux/arm64 --format json "$A_HOST/src/img:v1"
assert_eq "$R2" "$(jq -r '.[].digest' <<<"$OUT")" "--platform linux/arm64 lists only its referrer"
assert_eq "SPDX-2.3" "$(jq -r '.[0].layers[0].content.spdxVersion' <<<"$OUT")" "the SBOM's content in --format json"
run_ok "$PLAIT" inspect --attestations --platform linux/amd64 --format json "$A_HOST/src/img:v1"
assert_eq "https://slsa.dev/provenance/v1" "$(jq -r '.[0].layers[0].content.predicateType' <<<"$OUT")" \
	"the provenance's predicateType in --format json"
assert_eq "referrers-tag linux/amd64 $AMD64" "$(jq -r '.[0] | "\(.stored) \(.platform) \(.subject)"' <<<"$OUT")" \
	"where the provenance was found"
pass "inspect --attestations --platform --format json prints each document"

# ------------------------------------------------ copy --all: to the Referrers API
run_ok "$PLAIT" copy -q --all "$A_HOST/src/img:v1" "$P_HOST/dst/img:v1"
[ "$(stat_of "$T/refproxy-stats.json" subject_put)" -ge 2 ] ||
	fail "copy put no manifest with a subject through the proxy: $(cat "$T/refproxy-stats.json")"
curl -sS "http://$B_HOST/v2/dst/img/tags/list" >"$T/tagsB.json"
assert_eq 0 "$(jq '.tags | map(select(startswith("sha256-") and (endswith(".sig") | not))) | length' "$T/tagsB.json")" \
	"fallback tags where the registry keeps referrers itself ($(cat "$T/tagsB.json"))"
curl -sS "http://$P_HOST/v2/dst/img/referrers/$AMD64" >"$T/api.json"
assert_eq "$R1 application/vnd.in-toto+json" "$(jq -r '.manifests[] | "\(.digest) \(.artifactType)"' "$T/api.json")" \
	"the Referrers API's answer for the amd64 image"
run_ok "$PLAIT" inspect --attestations "$P_HOST/dst/img:v1"
assert_match "$OUT" "linux/amd64 +referrers-api +$R1" "inspect --attestations through the Referrers API"
assert_match "$OUT" "linux/arm64 +referrers-api +$R2" "inspect --attestations through the Referrers API"
before=$(stat_of "$T/refproxy-stats.json" referrers_get)
[ "$before" -ge 2 ] || fail "inspect did not ask the Referrers API ($before GETs)"
pass "copy --all to a registry with the Referrers API: stored there, no fallback tag; inspect uses the API"

# ------------------------------------------------ copy --all: to the tag fallback
run_ok "$PLAIT" copy -q --all "$A_HOST/src/img:v1" "$C_HOST/dst/img:v1"
C_URL=http://$C_HOST
assert_eq "$INDEX" "sha256:$(skopeo_reg inspect --raw "docker://$C_HOST/dst/img:v1" | sha256_stdin)" "index digest at C"
for pair in "$AMD64 $R1" "$ARM64 $R2"; do
	set -- $pair
	curl -sS -H 'Accept: application/vnd.oci.image.index.v1+json' \
		"$C_URL/v2/dst/img/manifests/sha256-${1#sha256:}" >"$T/fb.json"
	assert_eq "$2" "$(jq -r '.manifests[].digest' "$T/fb.json")" "fallback tag of $1 at C, read with curl"
	assert_eq "$2" "sha256:$(skopeo_reg inspect --raw "docker://$C_HOST/dst/img@$2" | sha256_stdin)" \
		"skopeo inspect --raw of referrer $2 at C"
	assert_eq "$(skopeo_reg inspect --raw "docker://$A_HOST/src/img@$2" | sha256_stdin)" \
		"$(skopeo_reg inspect --raw "docker://$C_HOST/dst/img@$2" | sha256_stdin)" "referrer $2 at A and C"
done
assert_eq "$SIG" "sha256:$(skopeo_reg inspect --raw "docker://$C_HOST/dst/img:sha256-${AMD64#sha256:}.sig" | sha256_stdin)" \
	"cosign's .sig tag carried"
assert_eq 0 "$(jq '[.manifests[] | select(.platform.os == "unknown")] | length' "$T/index.json")" \
	"unknown/unknown entries in the index"
run_ok "$PLAIT" inspect --attestations "$C_HOST/dst/img:v1"
assert_match "$OUT" "linux/amd64 +referrers-tag +$R1" "inspect --attestations at C"
pass "copy --all to docker-registry: fallback tags, cosign's tag, digests as skopeo sees them"

# ------------------------------------------------ --no-referrers
run_ok "$PLAIT" copy -q --all --no-referrers "$A_HOST/src/img:v1" "$C_HOST/bare/img:v1"
curl -sS "$C_URL/v2/bare/img/tags/list" >"$T/tagsbare.json"
assert_eq '["v1"]' "$(jq -c '.tags' "$T/tagsbare.json")" "tags of a copy --no-referrers"
run_ok "$PLAIT" inspect --attestations "$C_HOST/bare/img:v1"
assert_not_contains "$OUT" "$R1" "inspect --attestations of a copy --no-referrers"
pass "copy --all --no-referrers leaves them behind"

run_expect_fail "$PLAIT" inspect --attestations --raw "$A_HOST/src/img:v1"
expect_rc 2
assert_contains "$ERR" "--attestations and --raw" "the refusal"
pass "inspect --attestations --raw is refused by name"

# ------------------------------------------------ index create keeps its sources' referrers
run_ok "$PLAIT" index create -q -t "$C_HOST/made/img:v1" "$A_HOST/src/img@$AMD64" "$A_HOST/src/img@$ARM64"
run_ok "$PLAIT" inspect --attestations "$C_HOST/made/img:v1"
assert_match "$OUT" "linux/amd64 +referrers-tag +$R1 +application/vnd.in-toto\+json +$AMD64" "inspect of a made index"
assert_match "$OUT" "linux/arm64 +referrers-tag +$R2 +application/spdx\+json +$ARM64" "inspect of a made index"
skopeo_reg inspect --raw "docker://$C_HOST/made/img:v1" >"$T/made.json"
assert_eq 0 "$(jq '[.manifests[] | select(.platform.os == "unknown")] | length' "$T/made.json")" \
	"unknown/unknown entries in the made index"
pass "index create keeps its sources' referrers (and the index holds only platforms)"
