#!/usr/bin/env bash
# bench/upload-floor.sh LAYOUT HOST REPO - upload every blob of an OCI layout
# to a registry with curl, 4 at a time (monolithic POST + PUT), then nothing
# else: the least work any copying client can make a registry do. Used by
# bench/copy.sh to show where the registry itself limits the copy.
set -euo pipefail
layout=$1 host=$2 repo=$3
put_one() {
	local f=$1 host=$2 repo=$3 loc
	loc=$(curl -fsS -D - -o /dev/null -X POST "http://$host/v2/$repo/blobs/uploads/" |
		tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
	case "$loc" in http*) ;; *) loc="http://$host$loc" ;; esac
	case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
	curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
		-T "$f" "$loc${sep}digest=sha256:$(basename "$f")"
}
export -f put_one
find "$layout/blobs/sha256" -type f -print0 |
	xargs -0 -P 4 -I{} bash -c 'put_one "$1" "$2" "$3"' _ {} "$host" "$repo"
