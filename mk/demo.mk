# `make demo`: installs what is missing, builds, then runs the CLI against the
# local sandbox (query, HTML report, a 20-VIN batch). See tools/demo.sh and docs/cli.md.
.PHONY: demo

demo: deps build
	@sh tools/demo.sh
