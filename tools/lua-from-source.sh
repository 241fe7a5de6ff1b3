#!/usr/bin/env bash
# Build a Lua from its source (e.g. 5.5, which Debian 12/13 do not package) into PREFIX, so that
# lthreading and its specs can run on it:
#   PREFIX/bin/lua, PREFIX/include/*.h, PREFIX/lib/liblua.a (-fPIC: usable for a module's host)
# and, when their sources are given, busted's three C dependencies built for that Lua
# (lfs, system.core, term.core in PREFIX/lib/lua/X.Y); busted's Lua side is Debian's
# (/usr/share/lua/5.4, from lua-busted).  Writes PREFIX/env.sh, to source before
#   make test LUA_VERSION=X.Y LUA=PREFIX/bin/lua LUA_INC=PREFIX/include
# Usage: tools/lua-from-source.sh LUA_SRC PREFIX [LFS_SRC LUASYSTEM_SRC LUATERM_SRC]
#   LUA_SRC: a release tarball's directory (src/ inside) or a checkout of github.com/lua/lua;
#   LFS_SRC, LUASYSTEM_SRC, LUATERM_SRC: checkouts of luafilesystem, luasystem (the version
#   Debian's lua-system is: v0.2.1 on Debian 12) and lua-term.
# Extra compiler flags: CFLAGS (e.g. CFLAGS=-fsanitize=undefined).
set -eu
src=$(cd "$1" && pwd); prefix=$2; shift 2
mkdir -p "$prefix"; prefix=$(cd "$prefix" && pwd)
[ -f "$src/src/lua.h" ] && src=$src/src
CC=${CC:-cc}
CFLAGS="-std=gnu99 -O2 -g -fPIC -DLUA_USE_LINUX ${CFLAGS:-}"
obj=$prefix/obj; mkdir -p "$obj" "$prefix/bin" "$prefix/include" "$prefix/lib"
for c in "$src"/l*.c; do
  case ${c##*/} in lua.c|luac.c|onelua.c|ltests.c) continue ;; esac
  $CC $CFLAGS -c -o "$obj/$(basename "$c" .c).o" "$c"
done
rm -f "$prefix/lib/liblua.a"; ar rcs "$prefix/lib/liblua.a" "$obj"/*.o
$CC $CFLAGS -o "$prefix/bin/lua" "$src/lua.c" -Wl,-E "$prefix/lib/liblua.a" -lm -ldl
cp "$src"/lua.h "$src"/luaconf.h "$src"/lualib.h "$src"/lauxlib.h "$prefix/include/"
[ -f "$src/lua.hpp" ] && cp "$src/lua.hpp" "$prefix/include/"
V=$("$prefix/bin/lua" -e 'io.write((_VERSION:match("%d+%.%d+")))')
VU=${V/./_}
mod() {   # $1 = module file under lib/lua/V, rest = C sources
  local out=$prefix/lib/lua/$V/$1; shift
  mkdir -p "$(dirname "$out")"
  $CC $CFLAGS -shared -I"$prefix/include" -o "$out" "$@"
}
if [ $# -ge 3 ]; then
  mod lfs.so "$1"/src/lfs.c
  mod system/core.so "$2"/src/*.c -lrt
  mod term/core.so "$3"/core.c
fi
# Debian's Lua modules (busted, penlight, ...) as they are, except files this Lua refuses to
# compile: since 5.5 a for loop's variable is read-only, and a few modules assign to it.  Their
# copy in PREFIX/share/lua/V re-declares that variable at the top of the loop body.
share=$prefix/share/lua/$V
"$prefix/bin/lua" - "$share" <<'LUA'
local out = arg[1]
local p = io.popen("cd /usr/share/lua/5.4 && find -L . -name '*.lua'")
for rel in p:lines() do
  local f = io.open("/usr/share/lua/5.4/" .. rel); local text = f:read("a"); f:close()
  local changed = false
  for _ = 1, 50 do
    local ok, err = load(text, "=" .. rel)
    if ok then break end
    local ln, name = err:match(":(%d+): attempt to assign to const variable '([%w_]+)'")
    if not ln then break end
    local lines, n = {}, 0
    for l in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
    for i = tonumber(ln) - 1, 1, -1 do
      if lines[i]:match("^%s*for%s") and lines[i]:match("%f[%w_]" .. name .. "%f[^%w_]")
         and lines[i]:match("%sdo%s*$") then
        lines[i] = lines[i]:gsub("%s*$", "") .. " local " .. name .. " = " .. name; n = 1; break
      end
    end
    if n == 0 then break end
    text, changed = table.concat(lines, "\n"), true
  end
  if changed then
    local dst = out .. "/" .. rel:sub(3)
    os.execute("mkdir -p '" .. dst:match("^(.*)/") .. "'")
    f = io.open(dst, "w"); f:write(text); f:close()
    print("patched for Lua " .. _VERSION:match("%d.%d") .. ": " .. rel:sub(3))
  end
end
p:close()
LUA
cat >"$prefix/env.sh" <<EOF
# source me: Lua $V from $src, busted's Lua modules from Debian's lua-busted (5.4 tree)
export LUA_PATH_$VU="$share/?.lua;$share/?/init.lua;/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua;./?.lua;./?/init.lua"
export LUA_CPATH_$VU="$prefix/lib/lua/$V/?.so;./?.so"
EOF
echo "Lua $V in $prefix (source $prefix/env.sh)"
