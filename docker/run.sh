#!/usr/bin/env bash
# Build with Vivado in the project's image:
#   docker/run.sh VIVADO_DIR [BOARD_FILES_DIR] -- BUILD_ARGS...
#   docker/run.sh /tools/Xilinx/Vivado/2024.2 -- --board pynq-z2 --vivado
#   docker/run.sh /tools/Xilinx/Vivado/2024.2 ~/boards -- --board pynq-z2 --vivado
# VIVADO_DIR is mounted read-only at the same path; BOARD_FILES_DIR (a folder of
# Vivado board files, e.g. a clone of Xilinx/XilinxBoardStore) is mounted at
# /boards and passed to the Tcl as SDBNN_BOARD_REPO. The build's output folder
# build/ of this checkout is mounted, so OUT/ (and OUT/deploy/sdbnn.bit) stay here.
set -euo pipefail
usage() { echo "usage: $0 VIVADO_DIR [BOARD_FILES_DIR] -- BUILD_ARGS..." >&2; exit 2; }
[[ $# -ge 2 ]] || usage
vivado_dir=$1; shift
boards=""
if [[ $1 != "--" ]]; then boards=$1; shift; fi
[[ ${1:-} == "--" ]] || usage
shift
if [[ ! -f "$vivado_dir/settings64.sh" ]]; then
    echo "error: $vivado_dir/settings64.sh not found; pass Vivado's version folder, e.g. /tools/Xilinx/Vivado/2024.2" >&2
    exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$repo/build"
args=(--rm -it -v "$vivado_dir:$vivado_dir:ro" -e "XILINX_VIVADO=$vivado_dir"
      -v "$repo/build:/workspace/sdbnn/build")
if [[ -n "$boards" ]]; then
    args+=(-v "$(cd "$boards" && pwd):/boards:ro" -e SDBNN_BOARD_REPO=/boards)
fi
exec docker run "${args[@]}" "${SDBNN_IMAGE:-sdbnn}" python build_flows/build.py "$@"
