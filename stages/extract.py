"""Stage extract: the annotated 5 fps frames of every video under data.root."""

import sys

from params import PARAMS

from vois_cli.data.extract import extract_root

if __name__ == "__main__":
    extract_root(PARAMS["data"]["root"], sys.argv[1])
