"""Stage infer: predictions of the trained model on params infer.split of data.root."""

import sys

from params import PARAMS

from vois_cli.infer_files import infer_split

if __name__ == "__main__":
    checkpoint, out = sys.argv[1:3]
    p = PARAMS["infer"]
    infer_split(PARAMS["data"]["root"], p["split"], checkpoint, out, device=p["device"])
