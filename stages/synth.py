"""Stage synth: generate the SynthLive benchmark at data.root's default location."""

import sys

from params import PARAMS

from vois_cli.data.synth import write_benchmark

if __name__ == "__main__":
    out = sys.argv[1]
    p = PARAMS["synth"]
    write_benchmark(out, p["preset"], p["seed"], workers=p["workers"], extra_train=p["extra_train"])
