#!/usr/bin/env bash
# make dist: the release files in dist/, built from the committed HEAD, with no network:
#   dist/lthreading-V.tar.gz      git archive of HEAD, top directory lthreading-V/
#   dist/lthreading-V-1.src.rock  luarocks pack of rockspec/lthreading-V-1.rockspec, its source
#                                 pointed at that tarball (the published rockspec fetches the
#                                 tag vV from git instead; the build is the same)
#   dist/manifest*                a rocks server: luarocks install lthreading --server=file://$PWD/dist
# Usage: tools/dist.sh VERSION [LUA_VERSION]
set -eu
V=$1; LV=${2:-5.4}
cd "$(dirname "$0")/.."
root=$(pwd)
spec=rockspec/lthreading-$V-1.rockspec
[ -f "$spec" ] || { echo "dist: $spec missing (LT_VERSION is $V)" >&2; exit 1; }
[ -z "$(git status --porcelain --untracked-files=no)" ] || echo "dist: note: uncommitted changes are not in the tarball (it is HEAD)"
rm -rf dist build/dist
mkdir -p dist build/dist
git archive --format=tar.gz --prefix="lthreading-$V/" -o "dist/lthreading-$V.tar.gz" HEAD
# The rockspec to pack: source = the tarball; copy_directories keeps only the directories the
# tarball has (luarocks refuses to install a rock whose copy_directories are missing).
have=$(tar -tzf "dist/lthreading-$V.tar.gz" | sed -n "s|^lthreading-$V/\([^/]*\)/\$|\1|p" | tr '\n' ' ')
"${LUA:-lua$LV}" - "$spec" "file://$root/dist/lthreading-$V.tar.gz" "lthreading-$V" "$have" \
  >"build/dist/lthreading-$V-1.rockspec" <<'LUA'
local spec, url, dir, have = arg[1], arg[2], arg[3], arg[4]
local text = assert(io.open(spec)):read("a")
local n
text, n = text:gsub("\nsource = %b{}", string.format('\nsource = {\n   url = %q,\n   dir = %q,\n}', url, dir), 1)
assert(n == 1, "no source = {...} in " .. spec)
text = text:gsub("(\n%s*copy_directories = )(%b{})", function(pre, list)
  local keep = {}
  for d in list:gmatch('"([^"]+)"') do
    if (" " .. have):find(" " .. d .. " ", 1, true) then keep[#keep + 1] = string.format("%q", d)
    else io.stderr:write("dist: note: ", d, "/ is not in the tree: the rock will not install it\n") end
  end
  return pre .. "{ " .. table.concat(keep, ", ") .. " }"
end)
io.write(text)
LUA
(cd dist && luarocks --lua-version="$LV" pack "$root/build/dist/lthreading-$V-1.rockspec" >/dev/null)
luarocks-admin --lua-version="$LV" make_manifest dist >/dev/null
ls -1 dist
