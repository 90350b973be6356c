-- wrk script for bench/sandbox_wrk.sh: every request carries the gateway
-- headers signed by the shell script (X-Date stays valid for 900 s).
-- luacheck: globals wrk
wrk.method = "GET"
wrk.headers["X-Date"] = os.getenv("SANDBOX_XDATE")
wrk.headers["X-Source"] = "market"
wrk.headers["Authorization"] = os.getenv("SANDBOX_AUTH")
