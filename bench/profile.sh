#!/bin/sh
# make bench-profile: where the time goes in the benchmarks that miss their
# targets. perf cannot count instructions on this machine (`perf stat -e
# instructions true` says <not supported>), so:
#   - callgrind (valgrind) under build/bench/lua54-prof, a Lua 5.4 interpreter
#     with symbols, annotated with callgrind_annotate (inclusive and self);
#   - LuaJIT's own sampling profiler (luajit -jp) by function and by line.
# Output: bench/results/profile-*.txt. Takes a minute or two.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
prof_lua=build/bench/lua54-prof
[ -x "$prof_lua" ] || { echo "run 'make bench-profile' (builds $prof_lua)"; exit 2; }
. bench/private_tmp.sh
tmp=$bench_tmp
mkdir -p bench/results

lua_path="$root/lua/?.lua;$root/lua/?/init.lua;;"

for workload in sequential normalize; do
    n=1000
    out=bench/results/profile-callgrind-lua5.4-$workload.txt
    echo "== callgrind, lua5.4, $workload x $n -> $out"
    LUA_PATH="$lua_path" LUA_CPATH="$root/build/lua5.4/?.so;;" \
        valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out" \
        "$prof_lua" bench/workload.lua "$workload" "$n" >"$tmp/valgrind.log" 2>&1 ||
        { cat "$tmp/valgrind.log"; exit 1; }
    {
        echo "# callgrind_annotate --inclusive=yes (top 45)"
        callgrind_annotate --inclusive=yes "$tmp/callgrind.out" | sed -n '/file:function/,$p' | head -47
        echo
        echo "# callgrind_annotate (self, top 30)"
        callgrind_annotate "$tmp/callgrind.out" | sed -n '/file:function/,$p' | head -32
    } >"$out"
    rm -f "$tmp/callgrind.out"
done

for workload in sequential concurrent normalize; do
    n=20000
    out=bench/results/profile-luajit-$workload.txt
    echo "== luajit -jp, $workload x $n -> $out"
    {
        echo "# luajit -jp=F (by function, C code charged to its Lua caller)"
        LUA_PATH="$lua_path" LUA_CPATH="$root/build/luajit/?.so;;" \
            luajit -jp=F bench/workload.lua "$workload" "$n" 2>&1 | head -25
        echo
        echo "# luajit -jp=l (by line)"
        LUA_PATH="$lua_path" LUA_CPATH="$root/build/luajit/?.so;;" \
            luajit -jp=l bench/workload.lua "$workload" "$n" 2>&1 | head -25
        echo
        echo "# luajit -jp=v (VM state)"
        LUA_PATH="$lua_path" LUA_CPATH="$root/build/luajit/?.so;;" \
            luajit -jp=v bench/workload.lua "$workload" "$n" 2>&1 | head -8
    } >"$out"
done
echo "# profiles in bench/results/"
