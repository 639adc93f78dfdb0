"""ocilayout.py - what the test image makers (mkbase.sh, mkdebian.sh) share:
naming the images they made in an OCI image layout.

publish(out, tag, descs, put_json): one image manifest, or an index of several
(one per platform), tagged TAG in OUT/index.json (an entry with the same tag is
replaced; written atomically). put_json(obj) stores a JSON blob and returns
(digest, size). Prints "TAG DIGEST".
"""
import json
import os

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


def publish(out, tag, descs, put_json):
    if len(descs) == 1:
        top = dict(descs[0])
    else:
        d, n = put_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs})
        top = {"mediaType": OCI_INDEX, "digest": d, "size": n}
    top["annotations"] = {REF_NAME: tag}
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    ipath = os.path.join(out, "index.json")
    try:
        with open(ipath) as f:
            index = json.load(f)
    except FileNotFoundError:
        index = {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index.get("manifests", [])
                          if m.get("annotations", {}).get(REF_NAME) != tag]
    index["manifests"].append(top)
    with open(ipath + ".tmp", "w") as f:
        json.dump(index, f, sort_keys=True, separators=(",", ":"))
    os.rename(ipath + ".tmp", ipath)
    print(tag, top["digest"])
