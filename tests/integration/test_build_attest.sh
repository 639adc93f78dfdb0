#!/usr/bin/env bash
# test_build_attest.sh - what `plait build --push` attaches to the images it
# pushes: a SLSA v1 provenance (by default, mode=min; --provenance=mode=max
# adds the steps) and, with --sbom, an SPDX 2.3 SBOM per platform image, as
# OCI 1.1 referrers: through the spec's tag fallback in docker-registry and
# through the Referrers API of referrersproxy.py in front of another; the
# index holds only platforms; the SBOM lists what the image's dpkg, Python
# and conda databases hold (a package a later layer removed is gone); the
# provenance names each platform's base image digest and the variant's args
# and never a secret-named build arg's value; rebuilding an unchanged image
# adds nothing; `plait copy --all` carries everything to a third registry.
# (The SBOM of a real Debian root file system against dpkg-query is checked
# in test_mlapp.sh.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_cmd skopeo docker-registry curl jq
require_plait
multi_base # R: the busybox amd64 + arm64 base at $BASE
registry_start C plain
registry_start B plain
refproxy_start "$B_HOST"
export SOURCE_DATE_EPOCH=1700000000
SECRET=hf_s3cr3t-value-7d1e

# ---------------------------------------------------------------- the context
ctx=$T/ctx
mkdir -p "$ctx/rootfs/var/lib/dpkg" "$ctx/rootfs/etc" \
	"$ctx/rootfs/usr/lib/python3/dist-packages" \
	"$ctx/rootfs/usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info" \
	"$ctx/rootfs/usr/local/lib/python3.11/site-packages/gone-1.0.dist-info" \
	"$ctx/rootfs/opt/conda/conda-meta"
cat >"$ctx/rootfs/var/lib/dpkg/status" <<'EOF'
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: libfoo1
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: foo (1.2-3)
Version: 1.2-3+b1
Description: a library

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 0.9-1
Description: removed, its configuration kept

Package: python3-numpy
Status: install ok installed
Architecture: amd64
Version: 1:1.24.2-1+deb12u1
Description: numerical Python
EOF
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' \
	>"$ctx/rootfs/etc/os-release"
printf 'Metadata-Version: 1.2\nName: numpy\nVersion: 1.24.2\nLicense: BSD\n' \
	>"$ctx/rootfs/usr/lib/python3/dist-packages/numpy-1.24.2.egg-info"
printf 'Metadata-Version: 2.4\nName: requests\nVersion: 2.31.0\nLicense-Expression: Apache-2.0\n\nRequests is an HTTP library.\n' \
	>"$ctx/rootfs/usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA"
printf 'Metadata-Version: 2.1\nName: gone\nVersion: 1.0\n' \
	>"$ctx/rootfs/usr/local/lib/python3.11/site-packages/gone-1.0.dist-info/METADATA"
printf '{"name": "zlib", "version": "1.2.13", "build": "h5eee18b_0", "license": "Zlib", "channel": "https://repo.anaconda.com/pkgs/main", "subdir": "linux-64"}\n' \
	>"$ctx/rootfs/opt/conda/conda-meta/zlib-1.2.13-h5eee18b_0.json"
cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
FROM $BASE
ARG FLAVOR=cpu
COPY rootfs/ /
RUN rm -rf /usr/local/lib/python3.11/site-packages/gone-1.0.dist-info && echo "$FLAVOR" >/flavor
CMD ["cat", "/flavor"]
EOF
git_commit=
if command -v git >/dev/null; then
	git -C "$ctx" init -q
	git -C "$ctx" remote add origin "https://user:tok3n-in-url@git.example.com/ml/app.git"
	git -C "$ctx" add -A
	git -C "$ctx" -c user.name=t -c user.email=t@example.com commit -qm init
	git_commit=$(git -C "$ctx" rev-parse HEAD)
fi

build() {
	CMD_TIMEOUT=300 run_ok "$PLAIT" build --cache-dir "$T/cache" --platform linux/amd64,linux/arm64 \
		--build-arg BASE="$BASE" --build-arg HF_TOKEN="$SECRET" \
		--variant cpu:FLAVOR=cpu --variant cuda:FLAVOR=cuda "$@" "$ctx"
}

# fallback_index HOST REPO DIGEST : the sha256-<hex> referrers tag's index (or "").
fallback_index() {
	curl -s -H 'Accept: application/vnd.oci.image.index.v1+json' \
		"http://$1/v2/$2/manifests/sha256-${3#sha256:}" | jq -c 'select(.manifests)'
}
child() { jq -r --arg a "$2" '.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$1"; }
blob() { curl -sf "http://$1/v2/$2/blobs/$3"; }

# ---------------------------------------------------------------- push to the tag fallback
build --provenance=mode=max --sbom -t "$R_HOST/app/img:1.0-{variant}" --push
idx=$(skopeo_reg inspect --raw "docker://$R_HOST/app/img:1.0-cpu")
assert_eq "linux/amd64 linux/arm64" "$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")' <<<"$idx")" \
	"the index's entries: platforms only, no unknown/unknown"
base_idx=$(skopeo_reg inspect --raw "docker://$BASE")
declare -A MAN
for a in amd64 arm64; do
	MAN[$a]=$(child "$idx" "$a")
	want_base=$(child "$base_idx" "$a")
	fb=$(fallback_index "$R_HOST" app/img "${MAN[$a]}")
	[ -n "$fb" ] || fail "no sha256-<hex> referrers tag for the $a image ${MAN[$a]}"
	assert_eq "application/spdx+json application/vnd.in-toto+json" \
		"$(jq -r '[.manifests[].artifactType] | sort | join(" ")' <<<"$fb")" "artifact types of the $a image's referrers"
	# each referrer names its subject and holds one document
	for d in $(jq -r '.manifests[].digest' <<<"$fb"); do
		m=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R_HOST/v2/app/img/manifests/$d")
		assert_eq "${MAN[$a]}" "$(jq -r .subject.digest <<<"$m")" "subject of referrer $d ($a)"
		assert_eq "application/vnd.oci.empty.v1+json" "$(jq -r .config.mediaType <<<"$m")" "config of referrer $d"
		blob "$R_HOST" app/img "$(jq -r '.layers[0].digest' <<<"$m")" >"$T/doc-$a-$(jq -r .artifactType <<<"$m" | tr / _)"
	done
	prov=$T/doc-$a-application_vnd.in-toto+json
	sbom=$T/doc-$a-application_spdx+json
	assert_eq "https://slsa.dev/provenance/v1" "$(jq -r .predicateType "$prov")" "predicateType ($a)"
	assert_eq "${MAN[$a]#sha256:}" "$(jq -r '.subject[0].digest.sha256' "$prov")" "provenance subject ($a)"
	assert_eq "$want_base" "$(jq -r --arg b "$BASE" '.predicate.buildDefinition.resolvedDependencies[] | select(.name == $b) | "sha256:" + .digest.sha256' "$prov")" \
		"the base image's $a digest in resolvedDependencies"
	assert_eq "linux/$a cpu cpu" "$(jq -r '.predicate.buildDefinition.externalParameters.request | "\(.platform) \(.variant) \(.args.FLAVOR)"' "$prov")" \
		"platform, variant and its arg in the provenance ($a)"
	assert_eq '["HF_TOKEN"]' "$(jq -c '.predicate.buildDefinition.externalParameters.request.redactedArgs' "$prov")" \
		"the secret-named arg is listed as redacted ($a)"
	assert_eq "1" "$(jq '[.predicate.buildDefinition.internalParameters.steps[] | select(.instruction | startswith("RUN rm -rf"))] | length' "$prov")" \
		"mode=max lists the RUN step ($a)"
	assert_eq "2023-11-14T22:13:20Z" "$(jq -r .predicate.runDetails.metadata.finishedOn "$prov")" "finishedOn clamped to SOURCE_DATE_EPOCH"
	if [ -n "$git_commit" ]; then
		assert_eq "git+https://git.example.com/ml/app.git@$git_commit" \
			"$(jq -r '.predicate.buildDefinition.externalParameters.configSource.uri' "$prov")" "the context's git source ($a)"
	fi
	# the SBOM: dpkg (no config-files package), Python (not the removed one), conda
	assert_eq "SPDX-2.3" "$(jq -r .spdxVersion "$sbom")" "spdxVersion ($a)"
	assert_eq "conda zlib 1.2.13
deb base-files 12.4+deb12u5
deb libfoo1 1.2-3+b1
deb python3-numpy 1:1.24.2-1+deb12u1
pypi numpy 1.24.2
pypi requests 2.31.0" \
		"$(jq -r '.packages[] | select(.externalRefs and (.primaryPackagePurpose != "CONTAINER")) | "\(.externalRefs[0].referenceLocator | capture("^pkg:(?<t>[a-z]+)/").t) \(.name) \(.versionInfo)"' "$sbom" | sort)" \
		"packages in the $a SBOM"
	assert_eq "pkg:deb/debian/python3-numpy@1%3A1.24.2-1%2Bdeb12u1?arch=amd64&distro=debian-12" \
		"$(jq -r '.packages[] | select(.name == "python3-numpy") | .externalRefs[0].referenceLocator' "$sbom")" "purl of a deb ($a)"
	assert_eq "Apache-2.0" "$(jq -r '.packages[] | select(.name == "requests") | .licenseDeclared' "$sbom")" "a declared SPDX licence ($a)"
	assert_eq "declared: BSD" "$(jq -r '.packages[] | select(.name == "numpy") | .licenseComments' "$sbom")" "a licence that is no SPDX id ($a)"
	assert_eq "$want_base" "sha256:$(jq -r '.packages[] | select(.SPDXID == "SPDXRef-BaseImage") | .checksums[0].checksumValue' "$sbom")" \
		"the base image in the $a SBOM"
	assert_eq "SPDXRef-Image DESCENDANT_OF SPDXRef-BaseImage" \
		"$(jq -r '.relationships[] | select(.relationshipType == "DESCENDANT_OF") | "\(.spdxElementId) \(.relationshipType) \(.relatedSpdxElement)"' "$sbom")" \
		"the image descends from its base ($a)"
done
prov_cuda=$(fallback_index "$R_HOST" app/img "$(child "$(skopeo_reg inspect --raw "docker://$R_HOST/app/img:1.0-cuda")" amd64)")
d=$(jq -r '.manifests[] | select(.artifactType == "application/vnd.in-toto+json") | .digest' <<<"$prov_cuda")
m=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R_HOST/v2/app/img/manifests/$d")
assert_eq "cuda cuda" "$(blob "$R_HOST" app/img "$(jq -r '.layers[0].digest' <<<"$m")" | jq -r '.predicate.buildDefinition.externalParameters.request | "\(.variant) \(.args.FLAVOR)"')" \
	"the cuda variant's provenance names its variant and arg"
# nothing anywhere in the registry holds the secret, or the git URL's token
if grep -rl -e "$SECRET" -e "tok3n-in-url" "$R_DIR" >/dev/null 2>&1; then
	fail "a secret reached the registry: $(grep -rl -e "$SECRET" -e tok3n-in-url "$R_DIR" | head -3)"
fi
pass "build --push --provenance=mode=max --sbom: per-platform provenance and SBOM as referrers (tag fallback), index without unknown/unknown, no secret stored"

run_ok "$PLAIT" inspect --attestations --format json "$R_HOST/app/img:1.0-cpu"
assert_eq "4" "$(jq 'length' <<<"$OUT")" "referrers inspect --attestations lists (2 platforms x 2)"
assert_eq "referrers-tag" "$(jq -r '[.[].stored] | unique | join(",")' <<<"$OUT")" "where they were found"
assert_eq "SPDX-2.3" "$(jq -r '[.[] | select(.artifactType == "application/spdx+json")][0].layers[0].content.spdxVersion' <<<"$OUT")" \
	"the SBOM's content through inspect"
pass "plait inspect --attestations finds them"

# ---------------------------------------------------------------- unchanged rebuild
build --provenance=mode=max --sbom -t "$R_HOST/app/img:1.0-{variant}" --push
for a in amd64 arm64; do
	assert_eq 2 "$(fallback_index "$R_HOST" app/img "${MAN[$a]}" | jq '.manifests | length')" "referrers of the $a image after an unchanged rebuild"
done
pass "rebuilding an unchanged image attaches nothing new"

# ---------------------------------------------------------------- default and off
build -t "$R_HOST/app/dflt:1.0-{variant}" --push
dm=$(child "$(skopeo_reg inspect --raw "docker://$R_HOST/app/dflt:1.0-cpu")" arm64)
assert_eq "application/vnd.in-toto+json" "$(fallback_index "$R_HOST" app/dflt "$dm" | jq -r '[.manifests[].artifactType] | join(" ")')" \
	"referrers of a --push without attestation flags: the provenance"
build --provenance=false -t "$R_HOST/app/none:1.0-{variant}" --push
assert_eq "" "$(curl -s "http://$R_HOST/v2/app/none/tags/list" | jq -r '.tags[] | select(startswith("sha256-"))')" \
	"referrers tags after --provenance=false"
pass "provenance mode=min by default with --push; --provenance=false attaches none"

# ---------------------------------------------------------------- the Referrers API
build --sbom -t "$P_HOST/app/img:1.0-{variant}" --push
pm=$(child "$(skopeo_reg inspect --raw "docker://$P_HOST/app/img:1.0-cpu")" amd64)
api=$(curl -s "http://$P_HOST/v2/app/img/referrers/$pm")
assert_eq "application/spdx+json application/vnd.in-toto+json" "$(jq -r '[.manifests[].artifactType] | sort | join(" ")' <<<"$api")" \
	"the Referrers API's answer for the amd64 image"
assert_eq "" "$(curl -s "http://$B_HOST/v2/app/img/tags/list" | jq -r '.tags[] | select(startswith("sha256-"))')" \
	"referrers tags behind a registry with the Referrers API"
run_ok "$PLAIT" inspect --attestations --format json "$P_HOST/app/img:1.0-cpu"
assert_eq "referrers-api" "$(jq -r '[.[].stored] | unique | join(",")' <<<"$OUT")" "inspect --attestations through the API"
pass "a registry with the Referrers API gets them through it, and no fallback tag"

# ---------------------------------------------------------------- copy
run_ok "$PLAIT" copy --all "$R_HOST/app/img:1.0-cpu" "$C_HOST/app/img:1.0-cpu"
for a in amd64 arm64; do
	assert_eq "$(fallback_index "$R_HOST" app/img "${MAN[$a]}" | jq -c '[.manifests[].digest] | sort')" \
		"$(fallback_index "$C_HOST" app/img "${MAN[$a]}" | jq -c '[.manifests[].digest] | sort')" "referrers of the $a image after copy"
	for d in $(fallback_index "$C_HOST" app/img "${MAN[$a]}" | jq -r '.manifests[].digest'); do
		assert_eq "$d" "sha256:$(skopeo_reg inspect --raw "docker://$C_HOST/app/img@$d" | sha256sum | cut -d' ' -f1)" \
			"skopeo's bytes of referrer $d at C"
	done
done
pass "plait copy --all carries the attestations; skopeo agrees on their digests"

# ---------------------------------------------------------------- refusals
run_expect_fail "$PLAIT" build --provenance=mode=maximal "$ctx"
assert_contains "$ERR" "unknown mode 'maximal'" "the refusal of a bad mode"
run_expect_fail "$PLAIT" build --sbom=generator=docker/buildkit-syft-scanner "$ctx"
assert_contains "$ERR" "generator=" "the refusal of an SBOM generator image"
pass "bad --provenance and --sbom values are refused by name"

# ---------------------------------------------------------------- --attest-layout buildx
build --sbom --attest-layout buildx -t "$R_HOST/app/bx:1.0-{variant}" --push -o "type=oci,dest=$T/bx-oci"
bx=$(skopeo_reg inspect --raw "docker://$R_HOST/app/bx:1.0-cpu")
assert_eq "linux/amd64 linux/arm64 unknown/unknown unknown/unknown" \
	"$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")' <<<"$bx")" "entries of a buildx-layout index"
for a in amd64 arm64; do
	img=$(child "$bx" "$a")
	att=$(jq -r --arg d "$img" '.manifests[] | select(.annotations["vnd.docker.reference.digest"] == $d) | "\(.annotations["vnd.docker.reference.type"]) \(.digest)"' <<<"$bx")
	assert_eq "attestation-manifest" "${att% *}" "the $a image's attestation entry"
	m=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$R_HOST/v2/app/bx/manifests/${att#* }")
	assert_eq "https://slsa.dev/provenance/v1 https://spdx.dev/Document" \
		"$(jq -r '[.layers[].annotations["in-toto.io/predicate-type"]] | join(" ")' <<<"$m")" "statements of the $a attestation manifest"
	s=$(blob "$R_HOST" app/bx "$(jq -r '.layers[1].digest' <<<"$m")")
	assert_eq "${img#sha256:} SPDX-2.3" "$(jq -r '"\(.subject[0].digest.sha256) \(.predicate.spdxVersion)"' <<<"$s")" \
		"the SBOM statement's subject and document ($a)"
	assert_eq "" "$(fallback_index "$R_HOST" app/bx "$img")" "no referrers tag in the buildx layout ($a)"
done
assert_eq "$bx" "$(skopeo inspect --raw "oci:$T/bx-oci:1.0-cpu")" "the OCI output's index (attestation entries too) vs the pushed one"
run_ok "$PLAIT" inspect --attestations --format json "$R_HOST/app/bx:1.0-cpu"
assert_eq "in-index" "$(jq -r '[.[].stored] | unique | join(",")' <<<"$OUT")" "inspect --attestations of the buildx layout"
run_expect_fail "$PLAIT" build --attest-layout buildx --index-format docker --platform linux/amd64 \
	--build-arg BASE="$BASE" -t "$R_HOST/app/bx:x" --push "$ctx"
assert_contains "$ERR" "--index-format oci" "the refusal of the buildx layout in a Docker list"
pass "--attest-layout buildx: attestation manifests as unknown/unknown index entries (registry and OCI output), no referrers"

# ---------------------------------------------------------------- bake's attest
cat >"$T/docker-bake.json" <<EOF2
{"target": {
  "a": {"context": "$ctx", "platforms": ["linux/amd64"], "args": {"BASE": "$BASE"},
        "tags": ["$R_HOST/bake/a:1"], "attest": ["type=provenance,mode=max", "type=sbom"]},
  "b": {"context": "$ctx", "platforms": ["linux/amd64"], "args": {"BASE": "$BASE", "FLAVOR": "b"},
        "tags": ["$R_HOST/bake/b:1"], "attest": ["type=provenance,mode=max", "type=sbom"]}},
 "group": {"default": {"targets": ["a", "b"]}}}
EOF2
CMD_TIMEOUT=300 run_ok "$PLAIT" bake -f "$T/docker-bake.json" --cache-dir "$T/cache" --push
for t in a b; do
	d=$(raw_digest "docker://$R_HOST/bake/$t:1")
	assert_eq "application/spdx+json application/vnd.in-toto+json" \
		"$(fallback_index "$R_HOST" "bake/$t" "$d" | jq -r '[.manifests[].artifactType] | sort | join(" ")')" "referrers of bake target $t"
done
run_ok "$PLAIT" bake -f "$T/docker-bake.json" --print
assert_eq '["type=provenance,mode=max","type=sbom"]' "$(jq -c .target.a.attest <<<"$OUT")" "attest in bake --print"
jq '.target.b.attest = ["type=provenance,mode=min"]' "$T/docker-bake.json" >"$T/bake-differ.json"
run_expect_fail "$PLAIT" bake -f "$T/bake-differ.json" --cache-dir "$T/cache" --push
assert_contains "$ERR" "target \"b\": attest differs from target \"a\"'s" "the refusal of differing attest lists"
pass "bake: a target's attest list is applied; targets that differ are refused by name"
