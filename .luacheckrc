-- Strict: every global is an error, in the library, the CLI and the specs.
std = "max"
max_line_length = 120
unused_args = true
files["spec/**/*.lua"] = { std = "+busted" }
files["spec/*_spec.lua"] = { std = "max+busted" }
files["lua/maintenance_report_sandbox/**/*.lua"] = { std = "max+ngx_lua" }
files["examples/openresty/**/*.lua"] = { std = "max+ngx_lua" }
exclude_files = { "build/**" }
