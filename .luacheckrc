-- luacheck configuration (CI: luacheck spec examples bench types).
std = "lua54"
-- Code lines stay within 120 columns; comments may run longer: each example's header cites the
-- tutorial section it mirrors on one line, and some explanations quote long error messages.
max_line_length = 120
max_comment_line_length = false

files["spec"] = { std = "+busted" }
-- examples/: a Thread subclass's run() keeps its method form (Python's run(self)) when it
-- does not use self.
files["examples"] = { self = false }
-- types/: LuaLS annotation stubs (---@meta): their functions have empty bodies by design.
files["types"] = { unused_args = false }
