#!/usr/bin/env bash
# Cross-compile the C module _nostall_tcp (boards/cmodules/nostall_tcp/) for the ESP32-C3 against
# the real headers: MicroPython (MICROPY_TAG of mk/build.mk), ESP-IDF with its esp-lwip, and
# Espressif's newlib. A developer check, not part of `make test`: CI cannot fetch the sources, and
# Debian has no ESP toolchain, so its riscv64-unknown-elf-gcc with the C3's -march/-mabi stands in
# for riscv32-esp-elf-gcc. Objects only: nothing is linked.
#
#   tools/check_cmodule.sh prepare   extract the sources from bare git repositories (MICROPY_GIT,
#                                    IDF_GIT, LWIP_GIT, NEWLIB_GIT) into $SRC_ROOT
#   tools/check_cmodule.sh [check]   compile tcp_abort_idle.c and modnostall_tcp.c with -Wall -Werror
#
# What is generated rather than taken as it is (a full port build would make these):
#   sdkconfig.h              ESP-IDF's own kconfgen (PyPI esp-idf-kconfig<3) over IDF's Kconfig
#                            with the defaults the board's build uses: MicroPython's
#                            boards/$BOARD/mpconfigboard.cmake list, then this repo's sdkconfig.overlay
#   genhdr/*.h               MicroPython's own py/make*.py, run over modnostall_tcp.c alone (the
#                            qstr enum holds py/qstrdefs.h's qstrs and the module's, not the port's)
#   newlib.h, _newlib_version.h   stubs: newlib's configure writes them into a toolchain; here
#                            they carry the options of Espressif's riscv32-esp-elf newlib build
#
# Settings (environment variables; the defaults are what `prepare` writes):
#   SRC_ROOT      .cache/cmodule-src
#   MICROPY_SRC   $SRC_ROOT/micropython-$MICROPY_TAG   (MicroPython source tree)
#   IDF_SRC       $SRC_ROOT/esp-idf-$IDF_REV           (ESP-IDF tree: Kconfig, components/)
#   LWIP_SRC      $IDF_SRC/components/lwip/lwip        (esp-lwip, ESP-IDF's submodule)
#   NEWLIB_SRC    $SRC_ROOT/newlib-esp32                (Espressif's newlib-esp32 source tree)
#   KCONFGEN_PY   .cache/kconfig-venv/bin/python        (a Python with esp-idf-kconfig installed)
#   CC            riscv64-unknown-elf-gcc               (Debian: gcc-riscv64-unknown-elf)
#   BOARD         ESP32_GENERIC_C3                      (a RISC-V board: Debian has no Xtensa ESP32 gcc)
#   OUT           .cache/cmodule-check                  (generated headers and the objects)
# For `prepare`: MICROPY_GIT, IDF_GIT, LWIP_GIT, NEWLIB_GIT (git directories: a bare clone, or a
# checkout's .git, of micropython/micropython, espressif/esp-idf, espressif/esp-lwip,
# espressif/newlib-esp32), IDF_REV (default: IDF_RECOMMENDED of mk/build.mk), LWIP_REV (default:
# the esp-lwip commit IDF_REV pins as its submodule), NEWLIB_REV (default esp-4.3.0_20240322, the
# newest esp-4.3.0 tag of newlib-esp32 seen; ESP-IDF v5.3.1 and v5.5.1 name newlib 4.3.0 in
# components/newlib/sbom.yml).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

die() { echo "error: $*" >&2; exit 1; }

mk_var() {  # the value of `NAME ?= value` in mk/build.mk
    sed -n "s/^$1 ?= *//p" mk/build.mk | head -n 1
}

MICROPY_TAG=${MICROPY_TAG:-$(mk_var MICROPY_TAG)}
IDF_REV=${IDF_REV:-$(mk_var IDF_RECOMMENDED)}
NEWLIB_REV=${NEWLIB_REV:-esp-4.3.0_20240322}
SRC_ROOT=${SRC_ROOT:-.cache/cmodule-src}
MICROPY_SRC=${MICROPY_SRC:-$SRC_ROOT/micropython-$MICROPY_TAG}
IDF_SRC=${IDF_SRC:-$SRC_ROOT/esp-idf-$IDF_REV}
LWIP_SRC=${LWIP_SRC:-$IDF_SRC/components/lwip/lwip}
NEWLIB_SRC=${NEWLIB_SRC:-$SRC_ROOT/newlib-esp32}
KCONFGEN_PY=${KCONFGEN_PY:-.cache/kconfig-venv/bin/python}
CC=${CC:-riscv64-unknown-elf-gcc}
BOARD=${BOARD:-ESP32_GENERIC_C3}
OUT=${OUT:-.cache/cmodule-check}
MOD=boards/cmodules/nostall_tcp

# ---- prepare: sources out of bare git repositories --------------------------------------------
git_has() { git --git-dir="$1" cat-file -e "$2^{commit}" 2>/dev/null; }

extract() {  # extract GITDIR REV DEST [PATHS...]: the tree (or PATHS) of REV into DEST
    local gitdir=$1 rev=$2 dest=$3
    shift 3
    rm -rf "$dest.partial" && mkdir -p "$dest.partial"
    # Large files the snapshot lacks make git archive complain; the trees we need are complete.
    git --git-dir="$gitdir" archive "$rev" "$@" 2>/dev/null | tar -x -C "$dest.partial"
    echo "$rev $(git --git-dir="$gitdir" rev-parse "$rev^{commit}")" > "$dest.partial/.check_cmodule_rev"
    rm -rf "$dest" && mv "$dest.partial" "$dest"
    echo "==> $dest: $(cat "$dest/.check_cmodule_rev")"
}

rev_of() {  # what `prepare` extracted into a tree: "REV COMMIT", or the tree's path
    if [ -f "$1/.check_cmodule_rev" ]; then cat "$1/.check_cmodule_rev"; else echo "$1"; fi
}

prepare() {
    local v
    for v in MICROPY_GIT IDF_GIT LWIP_GIT NEWLIB_GIT; do
        [ -n "${!v:-}" ] || die "$v is not set: give the bare git dir of its repository (micropython/micropython, espressif/esp-idf, espressif/esp-lwip, espressif/newlib-esp32)"
        git --git-dir="${!v}" rev-parse --git-dir >/dev/null 2>&1 || die "$v=${!v} is not a git directory"
    done
    git_has "$MICROPY_GIT" "$MICROPY_TAG" || die "MicroPython $MICROPY_TAG is not in MICROPY_GIT=$MICROPY_GIT"
    git_has "$IDF_GIT" "$IDF_REV" || die "ESP-IDF $IDF_REV is not in IDF_GIT=$IDF_GIT (set IDF_REV)"
    local pinned
    pinned=$(git --git-dir="$IDF_GIT" ls-tree "$IDF_REV" components/lwip/lwip | awk '{print $3}')
    LWIP_REV=${LWIP_REV:-$pinned}
    git_has "$LWIP_GIT" "$LWIP_REV" || die "esp-lwip $LWIP_REV (pinned by ESP-IDF $IDF_REV) is not in LWIP_GIT=$LWIP_GIT: fetch a newer esp-lwip, or set IDF_REV to an ESP-IDF whose pin it has (or LWIP_REV=<commit>)"
    git_has "$NEWLIB_GIT" "$NEWLIB_REV" || die "newlib $NEWLIB_REV is not in NEWLIB_GIT=$NEWLIB_GIT (set NEWLIB_REV)"
    mkdir -p "$SRC_ROOT"
    extract "$MICROPY_GIT" "$MICROPY_TAG" "$SRC_ROOT/micropython-$MICROPY_TAG" py extmod shared ports/esp32
    extract "$IDF_GIT" "$IDF_REV" "$SRC_ROOT/esp-idf-$IDF_REV" Kconfig sdkconfig.rename components
    # Where the submodule sits in an ESP-IDF checkout (LWIP_SRC's default).
    extract "$LWIP_GIT" "$LWIP_REV" "$SRC_ROOT/esp-idf-$IDF_REV/components/lwip/lwip"
    [ "$LWIP_REV" = "$pinned" ] || echo "note: esp-lwip $LWIP_REV is not the commit ESP-IDF $IDF_REV pins ($pinned)"
    extract "$NEWLIB_GIT" "$NEWLIB_REV" "$SRC_ROOT/newlib-esp32" newlib/libc/include newlib/libc/machine/riscv newlib/libc/sys/esp
    echo "==> prepared; now: tools/check_cmodule.sh (with IDF_REV=$IDF_REV if you set it here)"
}

# ---- check --------------------------------------------------------------------------------------
need_tools() {
    command -v "$CC" >/dev/null || die "$CC not found: apt-get install gcc-riscv64-unknown-elf (or set CC)"
    command -v python3 >/dev/null || die "python3 not found: apt-get install python3"
    [ -x "$KCONFGEN_PY" ] && "$KCONFGEN_PY" -c "import kconfgen" 2>/dev/null \
        || die "no esp-idf-kconfig at KCONFGEN_PY=$KCONFGEN_PY: python3 -m venv .cache/kconfig-venv && .cache/kconfig-venv/bin/pip install 'esp-idf-kconfig<3' (or set KCONFGEN_PY)"
    [ -f "$MICROPY_SRC/py/mpconfig.h" ] || die "no MicroPython at MICROPY_SRC=$MICROPY_SRC: set MICROPY_SRC to a MicroPython $MICROPY_TAG tree, or run '$0 prepare'"
    local found
    # As mk/build.mk reads it (MP_FOUND).
    found=$(awk '$2 ~ /^MICROPY_VERSION_(MAJOR|MINOR|MICRO|PRERELEASE)$/ {v[$2] = $3} END {if (v["MICROPY_VERSION_MAJOR"] != "") printf "v%s.%s.%s%s", v["MICROPY_VERSION_MAJOR"], v["MICROPY_VERSION_MINOR"], v["MICROPY_VERSION_MICRO"], (v["MICROPY_VERSION_PRERELEASE"] + 0 ? "-preview" : "")}' "$MICROPY_SRC/py/mpconfig.h")
    [ "$found" = "$MICROPY_TAG" ] || die "MICROPY_SRC=$MICROPY_SRC holds MicroPython ${found:-(unknown)}, not $MICROPY_TAG (mk/build.mk's MICROPY_TAG)"
    [ -f "$IDF_SRC/Kconfig" ] && [ -d "$IDF_SRC/components/lwip/port" ] || die "no ESP-IDF at IDF_SRC=$IDF_SRC (Kconfig, components/): set IDF_SRC, or run '$0 prepare'"
    [ -f "$LWIP_SRC/src/include/lwip/opt.h" ] || die "no esp-lwip at LWIP_SRC=$LWIP_SRC (src/include/lwip/opt.h): set LWIP_SRC, or run '$0 prepare'"
    [ -f "$NEWLIB_SRC/newlib/libc/include/stdio.h" ] || die "no newlib at NEWLIB_SRC=$NEWLIB_SRC (newlib/libc/include): set NEWLIB_SRC to Espressif's newlib-esp32, or run '$0 prepare'"
    [ -f "$MICROPY_SRC/ports/esp32/boards/$BOARD/mpconfigboard.cmake" ] && [ -f "boards/$BOARD/mpconfigboard.h" ] \
        || die "BOARD=$BOARD: no boards/$BOARD here or no ports/esp32/boards/$BOARD in MicroPython"
}

board_defaults() {  # the SDKCONFIG_DEFAULTS list of MicroPython's board, one path a line
    sed -n '/set(SDKCONFIG_DEFAULTS/,/)/p' "$MICROPY_SRC/ports/esp32/boards/$BOARD/mpconfigboard.cmake" \
        | grep -o 'boards/[A-Za-z0-9_./-]*'
}

board_target() {  # the board's IDF_TARGET; the port's default is esp32
    local t
    t=$(sed -n 's/^set(IDF_TARGET \([a-z0-9]*\))/\1/p' "$MICROPY_SRC/ports/esp32/boards/$BOARD/mpconfigboard.cmake")
    echo "${t:-esp32}"
}

gen_sdkconfig() {  # $OUT/config/sdkconfig.h, as ESP-IDF's kconfig.cmake makes it
    local target=$1 cfg=$OUT/config d args=()
    mkdir -p "$cfg"
    ls "$IDF_SRC"/components/*/Kconfig | sed 's/.*/source "&"/' > "$cfg/kconfigs.in"
    ls "$IDF_SRC"/components/*/Kconfig.projbuild | sed 's/.*/source "&"/' > "$cfg/kconfigs_projbuild.in"
    local renames
    renames=$(ls "$IDF_SRC"/components/*/sdkconfig.rename "$IDF_SRC"/components/*/sdkconfig.rename."$target" 2>/dev/null | paste -sd';' -)
    cat > "$cfg/config.env" <<EOF
{"COMPONENT_KCONFIGS": "", "COMPONENT_KCONFIGS_PROJBUILD": "", "COMPONENT_SDKCONFIG_RENAMES": "$renames",
 "IDF_TARGET": "$target", "IDF_TOOLCHAIN": "gcc", "IDF_VERSION": "${IDF_REV#v}", "IDF_ENV_FPGA": "",
 "IDF_PATH": "$(cd "$IDF_SRC" && pwd)", "COMPONENT_KCONFIGS_SOURCE_FILE": "$(cd "$cfg" && pwd)/kconfigs.in",
 "COMPONENT_KCONFIGS_PROJBUILD_SOURCE_FILE": "$(cd "$cfg" && pwd)/kconfigs_projbuild.in"}
EOF
    for d in $(board_defaults) "$ROOT/sdkconfig.overlay"; do
        case $d in /*) ;; *) d=$MICROPY_SRC/ports/esp32/$d ;; esac
        [ -f "$d" ] || die "sdkconfig defaults file $d is missing"
        args+=(--defaults "$d")
        [ ! -f "$d.$target" ] || args+=(--defaults "$d.$target")
    done
    rm -f "$cfg/sdkconfig"
    "$KCONFGEN_PY" -m kconfgen --list-separator=semicolon --kconfig "$IDF_SRC/Kconfig" \
        --sdkconfig-rename "$IDF_SRC/sdkconfig.rename" --config "$cfg/sdkconfig" "${args[@]}" \
        --env IDF_MINIMAL_BUILD=n --env-file "$cfg/config.env" \
        --output header "$cfg/sdkconfig.h" --output config "$cfg/sdkconfig" >"$cfg/kconfgen.log" 2>&1 \
        || die "kconfgen failed (ESP-IDF $IDF_SRC with esp-idf-kconfig at $KCONFGEN_PY): see $cfg/kconfgen.log"
    grep -q "^#define CONFIG_IDF_TARGET_${target^^} 1" "$cfg/sdkconfig.h" || die "kconfgen wrote no $target sdkconfig.h: see $cfg/kconfgen.log"
}

gen_libc() {  # $OUT/libc: Espressif's newlib headers as a riscv32-esp-elf toolchain installs them
    local libc=$OUT/libc n=$NEWLIB_SRC/newlib/libc
    rm -rf "$libc" && mkdir -p "$libc"
    cp -r "$n/include/." "$libc/"
    cp -r "$n/machine/riscv/sys/." "$libc/sys/"
    [ ! -d "$n/sys/esp/include" ] || cp -r "$n/sys/esp/include/." "$libc/"
    # Written by newlib's configure in a toolchain build (the tree has placeholders): stubs with the
    # options of Espressif's riscv32-esp-elf build (crosstool-NG samples/riscv32-esp-elf).
    cat > "$libc/_newlib_version.h" <<'EOF'
/* stub of newlib's configure output (check_cmodule.sh) */
#ifndef _NEWLIB_VERSION_H__
#define _NEWLIB_VERSION_H__ 1
#define _NEWLIB_VERSION "4.3.0"
#define __NEWLIB__ 4
#define __NEWLIB_MINOR__ 3
#define __NEWLIB_PATCHLEVEL__ 0
#endif
EOF
    cat > "$libc/newlib.h" <<'EOF'
/* stub of newlib's configure output (check_cmodule.sh): Espressif's riscv32-esp-elf options */
#ifndef __NEWLIB_H__
#define __NEWLIB_H__ 1
#include <_newlib_version.h>
#define _WANT_REENT_SMALL 1
#define _RETARGETABLE_LOCKING 1
#define _WANT_USE_LONG_TIME_T 1
#define _NANO_MALLOC 1
#define _NANO_FORMATTED_IO 1
#define _WANT_IO_LONG_LONG 1
#define _WANT_IO_POS_ARGS 1
#define _MB_LEN_MAX 1
#define _HAVE_INITFINI_ARRAY 1
#define _ATEXIT_DYNAMIC_ALLOC 1
#define _HAVE_LONG_DOUBLE 1
#define _LDBL_EQ_DBL 1
#define _FVWRITE_IN_STREAMIO 1
#define _FSEEK_OPTIMIZATION 1
#define _UNBUF_STREAM_OPT 1
#define _HAVE_CC_INHIBIT_LOOP_TO_LIBCALL 1
#endif
EOF
}

idf_includes() {  # the public include dirs of lwip and of the components its headers pull in
    local target=$1 c=$IDF_SRC/components d
    for d in \
        "$c/lwip/include" "$c/lwip/include/apps" "$c/lwip/include/apps/sntp" "$LWIP_SRC/src/include" \
        "$c/lwip/port/include" "$c/lwip/port/freertos/include" "$c/lwip/port/esp32xx/include" \
        "$c/lwip/port/esp32xx/include/arch" "$c/lwip/port/esp32xx/include/sys" \
        "$c/freertos/config/include" "$c/freertos/config/include/freertos" "$c/freertos/config/riscv/include" \
        "$c/freertos/FreeRTOS-Kernel/include" "$c/freertos/FreeRTOS-Kernel/portable/riscv/include" \
        "$c/freertos/FreeRTOS-Kernel/portable/riscv/include/freertos" "$c/freertos/esp_additions/include" \
        "$c/esp_common/include" "$c/esp_system/include" "$c/esp_hw_support/include" \
        "$c/esp_hw_support/include/soc" "$c/soc/include" "$c/soc/$target/include" "$c/soc/$target/register" \
        "$c/hal/include" "$c/hal/$target/include" "$c/hal/platform_port/include" "$c/esp_rom/include" \
        "$c/esp_rom/$target/include" "$c/esp_rom/$target/include/$target" "$c/esp_rom/$target" \
        "$c/log/include" "$c/heap/include" "$c/riscv/include" "$c/newlib/platform_include" \
        "$c/esp_libc/platform_include" "$c/esp_timer/include" "$c/vfs/include"; do
        [ ! -d "$d" ] || echo "-I$d"
    done
}

gen_genhdr() {  # $OUT/genhdr: MicroPython's generated headers, made from modnostall_tcp.c alone
    local gen=$OUT/genhdr py=$MICROPY_SRC/py kind
    rm -rf "$gen" && mkdir -p "$gen"
    python3 "$py/makeversionhdr.py" "$gen/mpversion.h" >/dev/null
    # The port's qstr pass: preprocess with NO_QSTR, split out Q()/module/root-pointer lines, collect.
    python3 "$py/makeqstrdefs.py" pp "$CC" -E output "$gen/qstr.i.last" \
        cflags "${MP_CFLAGS[@]}" -DNO_QSTR cxxflags -DNO_QSTR sources "$MOD/modnostall_tcp.c" \
        || die "preprocessing modnostall_tcp.c for qstrs failed"
    for kind in qstr module root_pointer; do
        python3 "$py/makeqstrdefs.py" split "$kind" "$gen/qstr.i.last" "$gen/$kind" _ >/dev/null
        python3 "$py/makeqstrdefs.py" cat "$kind" _ "$gen/$kind" "$gen/$kind.collected" >/dev/null
    done
    cat "$py/qstrdefs.h" "$MICROPY_SRC/ports/esp32/qstrdefsport.h" "$gen/qstr.collected" \
        | sed 's/^Q(.*)/"&"/' | "$CC" -E "${MP_CFLAGS[@]}" - | sed 's/^"\(Q(.*)\)"/\1/' > "$gen/qstrdefs.preprocessed.h"
    python3 "$py/makeqstrdata.py" "$gen/qstrdefs.preprocessed.h" > "$gen/qstrdefs.generated.h"
    python3 "$py/makemoduledefs.py" "$gen/module.collected" > "$gen/moduledefs.h"
    python3 "$py/make_root_pointers.py" "$gen/root_pointer.collected" > "$gen/root_pointers.h"
    grep -q "MP_QSTR_unacked\|(unacked)" "$gen/qstrdefs.generated.h" || die "the qstr pass found no 'unacked' in $MOD/modnostall_tcp.c: see $gen"
}

check() {
    need_tools
    local target
    target=$(board_target)
    case $target in
        esp32c3) ;;
        esp32|esp32s2|esp32s3) die "BOARD=$BOARD is an $target (Xtensa): Debian has no compiler for it; use BOARD=ESP32_GENERIC_C3" ;;
        *) die "BOARD=$BOARD is an $target: this check knows the C3's -march/-mabi only; use BOARD=ESP32_GENERIC_C3" ;;
    esac
    mkdir -p "$OUT"
    gen_sdkconfig "$target"
    gen_libc
    local idf_inc
    mapfile -t idf_inc < <(idf_includes "$target")
    # ESP-IDF's own flags for a C3 app (tools/cmake/build.cmake, toolchain-esp32c3.cmake) with
    # -Wall -Werror, warnings of -Wextra too; the C library's headers after IDF's platform_include.
    local common=(-march=rv32imc_zicsr_zifencei -mabi=ilp32 -std=gnu17 -Os -ffunction-sections
        -fdata-sections -Wall -Werror -Wextra -Wno-unused-parameter -Wno-sign-compare
        -D_GNU_SOURCE -DESP_PLATFORM "-DIDF_VER=\"$IDF_REV\"" -I"$OUT/config"
        "${idf_inc[@]}" -isystem "$OUT/libc")
    local lwip_o=$OUT/tcp_abort_idle.o mod_o=$OUT/modnostall_tcp.o
    echo "==> $CC: $MOD/tcp_abort_idle.c (esp-lwip $LWIP_SRC, ESP-IDF $IDF_SRC, $target)"
    "$CC" "${common[@]}" -I"$MOD" -c "$MOD/tcp_abort_idle.c" -o "$lwip_o" \
        || die "tcp_abort_idle.c does not compile against esp-lwip + ESP-IDF (see above)"
    # The esp32 port's main component: MicroPython, the port, the board, the build dir (genhdr/).
    MP_CFLAGS=("${common[@]}" -I"$OUT" -I"$MICROPY_SRC" -I"$MICROPY_SRC/ports/esp32" -I"boards/$BOARD"
        -I"$MOD" -DMICROPY_VFS_FAT=1 -DMICROPY_VFS_LFS2=1
        "-DFFCONF_H=\"$MICROPY_SRC/lib/oofatfs/ffconf.h\"")
    gen_genhdr
    echo "==> $CC: $MOD/modnostall_tcp.c (MicroPython $MICROPY_SRC, port esp32, board $BOARD)"
    "$CC" "${MP_CFLAGS[@]}" -c "$MOD/modnostall_tcp.c" -o "$mod_o" \
        || die "modnostall_tcp.c does not compile against MicroPython's esp32 port (see above)"
    local o nm=${CC%gcc}nm
    for o in "$lwip_o" "$mod_o"; do
        echo "    $o defines: $("$nm" -g --defined-only "$o" | awk '{print $3}' | paste -sd' ' -)"
        echo "    $o needs: $("$nm" -u "$o" | awk '{print $2}' | paste -sd' ' -)"
    done
    echo "==> against MicroPython $(rev_of "$MICROPY_SRC"); ESP-IDF $(rev_of "$IDF_SRC"); esp-lwip $(rev_of "$LWIP_SRC"); newlib $(rev_of "$NEWLIB_SRC"); $("$CC" --version | head -n 1)"
    echo "==> ok: both compile with -Wall -Werror for $BOARD ($target), sdkconfig.h from kconfgen ($OUT/config/sdkconfig.h)"
}

case "${1:-check}" in
    prepare) prepare ;;
    check) check ;;
    *) die "usage: $0 [prepare|check]" ;;
esac
