# Event-loop hosts (docs/event-loop.md): spec/loop_*_spec.lua run the adapters in
# real luv, Neovim (headless), LÖVE (under xvfb-run), cqueues and copas 1.1.7.
# They are part of `make test`; `make deps` installs the hosts, `make check-hosts`
# runs only those specs.
HOST_PACKAGES = lua-luv neovim love xvfb xauth lua-cqueues lua-copas lua-socket lua-coxpcall

.PHONY: deps-hosts check-hosts

deps: deps-hosts

deps-hosts:
	@sh tools/deps.sh $(HOST_PACKAGES)

check-hosts: deps-hosts build
	@SPEC_FILES="$(sort $(wildcard spec/loop_*_spec.lua))" sh tools/run-specs.sh
