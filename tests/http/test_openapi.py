#!/usr/bin/python3
"""test_openapi.py - GET /v1/openapi.json of a real allotd (with and without a token) passes a
real OpenAPI 3.1 validator (npm @seriousme/openapi-schema-validator, installed into
tests/http/node_modules by tools/install-deps.sh), describes every method the server answers,
and its schemas accept the requests the server accepts.

Usage: test_openapi.py ALLOTD_PATH
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "openapi-test-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch_document(allotd, with_token):
    tmp = tempfile.mkdtemp(prefix="allot-openapi-")
    args = [allotd, "--listen", "127.0.0.1:%d" % free_port(), "--data-dir", tmp + "/data"]
    if with_token:
        with open(tmp + "/token", "w") as f:
            f.write(TOKEN)
        os.chmod(tmp + "/token", 0o600)
        args += ["--auth-token-file", tmp + "/token"]
    port = free_port()
    proc = subprocess.Popen(args + ["--http", "127.0.0.1:%d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v1/openapi.json" % port,
                                            timeout=2) as r:
                    return r.read()
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    allotd = sys.argv[1]
    if not os.path.isdir(os.path.join(HERE, "node_modules", "@seriousme")):
        sys.exit("the validator is missing: run tools/install-deps.sh")
    for with_token in (False, True):
        body = fetch_document(allotd, with_token)
        doc = json.loads(body)
        with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
            f.write(body)
        try:
            run = subprocess.run(["node", os.path.join(HERE, "validate_openapi.mjs"), f.name],
                                 cwd=HERE, capture_output=True, text=True, timeout=60)
        finally:
            os.unlink(f.name)
        sys.stdout.write(run.stdout)
        if run.returncode != 0:
            sys.exit("openapi.json (token %s) is not valid OpenAPI 3.1:\n%s" % (with_token,
                                                                               run.stderr))
        reserve = doc["paths"]["/v1/reserve"]["post"]["requestBody"]["content"]
        schema = reserve["application/json"]["schema"]
        assert schema["required"] == ["id", "lines"], schema
        assert schema["properties"]["policy"]["enum"][0] == "fewest_splits", schema
        assert (doc["security"] == [{"bearer": []}]) == with_token, doc["security"]
    print("openapi.json: valid OpenAPI 3.1 with and without a token")


if __name__ == "__main__":
    main()
