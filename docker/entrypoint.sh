#!/usr/bin/env bash
# Inside the image: put the mounted Vivado on PATH (XILINX_VIVADO, set by
# docker/run.sh), then run the command (default: a shell).
set -euo pipefail
if [[ -n "${XILINX_VIVADO:-}" ]]; then
    if [[ ! -f "$XILINX_VIVADO/settings64.sh" ]]; then
        echo "error: XILINX_VIVADO=$XILINX_VIVADO has no settings64.sh; mount a Vivado installation folder (e.g. /tools/Xilinx/Vivado/2024.2)" >&2
        exit 2
    fi
    # settings64.sh reads unset variables
    set +u
    # shellcheck disable=SC1091
    source "$XILINX_VIVADO/settings64.sh"
    set -u
fi
exec "$@"
