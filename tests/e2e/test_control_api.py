"""The control API (`/tyk/...`, `/hello`, `/ready`) as COMPAT "Control API" describes it:
every call and every error, with Tyk's statuses and JSON."""
import json
import re
import time

import pytest
import requests

from conftest import SECRET, Gateway, Origin, keyless_api

DENIED = {"status": "error", "message": "Attempted administrative access with invalid or missing key!"}
NOT_SUPPORTED = {"status": "error", "message": "Method not supported"}
MALFORMED = {"status": "error", "message": "Request malformed"}
NOT_FOUND = {"status": "error", "message": "API not found"}
MISMATCH = {"status": "error", "message": "Request APIID does not match that in Definition! For "
                                          "Update operations these must match."}
RELOAD_OK = {"status": "ok", "message": ""}
HEX32 = re.compile(r"^[0-9a-f]{32}$")




@pytest.fixture
def gw(gateway_factory, origin):
    return gateway_factory(apis=[keyless_api("echo", "/echo/", origin.url + "/base")])


@pytest.fixture(scope="module")
def ro_gw(tmp_path_factory):
    """One gateway for the tests that change nothing (they check that too)."""
    o = Origin("ro")
    g = Gateway(tmp_path_factory.mktemp("ro-gw"), {}, [keyless_api("echo", "/echo/", o.url)])
    g.start()
    g.origin = o
    yield g
    g.stop()
    o.stop()


def oas_doc(api_id, listen, upstream, name="OAS API", title="OAS title", active=True):
    info = {"name": name, "state": {"active": active}}
    if api_id is not None:
        info["id"] = api_id
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0.0"},
        "paths": {},
        "x-tyk-api-gateway": {
            "info": info,
            "upstream": {"url": upstream},
            "server": {"listenPath": {"value": listen, "strip": True}},
        },
    }


def wait_served(gw, path, status=200, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        r = requests.get(gw.url(path), timeout=5)
        if r.status_code == status or time.time() > deadline:
            return r
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# The secret.
@pytest.mark.parametrize("method,path", [
    ("GET", "/tyk/apis"), ("POST", "/tyk/apis"), ("GET", "/tyk/apis/echo"), ("PUT", "/tyk/apis/echo"),
    ("DELETE", "/tyk/apis/echo"), ("GET", "/tyk/reload"), ("GET", "/tyk/reload/group"),
    ("GET", "/tyk/apis/oas"), ("POST", "/tyk/apis/oas/import"), ("GET", "/tyk/nothing-here"),
    ("PATCH", "/tyk/apis"),
])
@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper(),
                                    SECRET + " x"], ids=["missing", "empty", "wrong", "prefix",
                                                         "longer", "case", "suffix"])
def test_invalid_or_missing_secret_403(ro_gw, method, path, secret):
    gw = ro_gw
    r = gw.admin(method, path, secret=secret, body=keyless_api("zz", "/zz/", gw.origin.url))
    assert r.status_code == 403
    assert r.json() == DENIED
    assert not (gw.apps / "zz.json").exists()
    assert (gw.apps / "echo.json").exists()


def test_secret_in_other_header_is_not_accepted(ro_gw):
    gw = ro_gw
    r = gw.admin("GET", "/tyk/apis", secret=None, headers={"Authorization": SECRET})
    assert r.status_code == 403 and r.json() == DENIED
    r = requests.get(gw.control_url(f"/tyk/apis?X-Tyk-Authorization={SECRET}"))
    assert r.status_code == 403 and r.json() == DENIED


def test_secret_header_name_case_insensitive(ro_gw):
    gw = ro_gw
    r = gw.admin("GET", "/tyk/apis", secret=None, headers={"x-tyk-authorization": SECRET})
    assert r.status_code == 200


# ---------------------------------------------------------------------------------------------
# Health.
def test_hello_without_secret(ro_gw):
    gw = ro_gw
    r = requests.get(gw.url("/hello"))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "pass"
    assert "version" in body and "description" in body and isinstance(body["details"], dict)


def test_ready_without_secret(ro_gw):
    gw = ro_gw
    r = requests.get(gw.url("/ready"))
    assert r.status_code == 200
    assert r.json()["status"] == "pass"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/hello", "/ready"])
def test_health_other_methods_405(ro_gw, method, path):
    gw = ro_gw
    r = requests.request(method, gw.url(path))
    assert r.status_code == 405


def test_health_check_endpoint_name(gateway_factory, origin):
    g = gateway_factory(conf={"health_check_endpoint_name": "healthz"},
                        apis=[keyless_api("echo", "/echo/", origin.url)])
    r = requests.get(g.url("/healthz"))
    assert r.status_code == 200 and r.json()["status"] == "pass"


# ---------------------------------------------------------------------------------------------
# /tyk/reload
@pytest.mark.parametrize("path", ["/tyk/reload", "/tyk/reload?block=true", "/tyk/reload/group",
                                  "/tyk/reload/", "/tyk/reload/group?block=true"])
def test_reload_ok(ro_gw, path):
    gw = ro_gw
    r = gw.admin("GET", path)
    assert r.status_code == 200
    assert r.json() == RELOAD_OK


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/tyk/reload", "/tyk/reload/group"])
def test_reload_other_methods_405(ro_gw, method, path):
    gw = ro_gw
    r = gw.admin(method, path)
    assert r.status_code == 405
    assert r.json() == NOT_SUPPORTED


def test_non_blocking_reload_applies_soon(gw, origin):
    r = gw.admin("POST", "/tyk/apis", keyless_api("later", "/later/", origin.url))
    assert r.status_code == 200
    assert requests.get(gw.url("/later/x")).status_code == 404
    assert gw.admin("GET", "/tyk/reload").json() == RELOAD_OK
    assert wait_served(gw, "/later/x").status_code == 200


# ---------------------------------------------------------------------------------------------
# /tyk/apis (Classic)
def test_list_apis(gw):
    r = gw.admin("GET", "/tyk/apis")
    assert r.status_code == 200
    apis = r.json()
    assert isinstance(apis, list)
    assert [a["api_id"] for a in apis] == ["echo"]
    assert apis[0]["proxy"]["listen_path"] == "/echo/"


def test_add_api_written_served_after_reload(gw, origin):
    api = keyless_api("added1", "/added/", origin.url + "/up")
    r = gw.admin("POST", "/tyk/apis", api)
    assert r.status_code == 200
    assert r.json() == {"key": "added1", "status": "ok", "action": "added"}
    f = gw.apps / "added1.json"
    assert f.exists()
    assert json.loads(f.read_text())["api_id"] == "added1"
    # not served (nor listed) until reloaded
    assert requests.get(gw.url("/added/x")).status_code == 404
    assert origin.count() == 0
    gw.reload()
    r = requests.get(gw.url("/added/x"))
    assert r.status_code == 200
    assert r.json()["path"] == "/up/x"
    r = gw.admin("GET", "/tyk/apis/added1")
    assert r.status_code == 200 and r.json()["api_id"] == "added1"
    assert sorted(a["api_id"] for a in gw.admin("GET", "/tyk/apis").json()) == ["added1", "echo"]


@pytest.mark.parametrize("given", ["", None], ids=["empty", "absent"])
def test_add_api_generates_id(gw, origin, given):
    api = keyless_api("x", "/gen/", origin.url)
    if given is None:
        del api["api_id"]
    else:
        api["api_id"] = given
    r = gw.admin("POST", "/tyk/apis", api)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["action"] == "added"
    assert HEX32.match(body["key"]), body
    f = gw.apps / f"{body['key']}.json"
    assert f.exists()
    assert json.loads(f.read_text())["api_id"] == body["key"]
    gw.reload()
    assert requests.get(gw.url("/gen/x")).status_code == 200
    assert gw.admin("GET", f"/tyk/apis/{body['key']}").status_code == 200


def test_two_generated_ids_differ(gw, origin):
    a = gw.admin("POST", "/tyk/apis", keyless_api("", "/g1/", origin.url)).json()["key"]
    b = gw.admin("POST", "/tyk/apis", keyless_api("", "/g2/", origin.url)).json()["key"]
    assert a != b


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[]", b"\"a string\"", b"{\"api_id\": \"x\",}",
                                 b"null"],
                         ids=["broken", "empty", "array", "string", "trailing-comma", "null"])
@pytest.mark.parametrize("path", ["/tyk/apis", "/tyk/apis/oas"])
def test_add_malformed_json_400(ro_gw, raw, path):
    gw = ro_gw
    r = gw.admin("POST", path, raw=raw)
    assert r.status_code == 400
    assert r.json() == MALFORMED
    assert sorted(p.name for p in gw.apps.iterdir()) == ["echo.json"]


@pytest.mark.parametrize("field,value", [
    ("active", "yes"), ("use_keyless", "true"), ("name", 5), ("proxy", "x"),
    ("api_id", 12), ("auth_configs", []),
])
def test_add_wrong_type_400(ro_gw, field, value):
    gw = ro_gw
    origin = ro_gw.origin
    api = keyless_api("typed", "/typed/", origin.url)
    api[field] = value
    r = gw.admin("POST", "/tyk/apis", api)
    assert r.status_code == 400
    assert r.json() == MALFORMED
    assert not (gw.apps / "typed.json").exists()


def test_add_wrong_type_nested_400(ro_gw):
    gw = ro_gw
    origin = ro_gw.origin
    api = keyless_api("typed", "/typed/", origin.url)
    api["proxy"]["strip_listen_path"] = "yes"
    r = gw.admin("POST", "/tyk/apis", api)
    assert r.status_code == 400 and r.json() == MALFORMED


def test_add_all_auth_sources_disabled_400(ro_gw):
    gw = ro_gw
    origin = ro_gw.origin
    api = keyless_api("noauth", "/noauth/", origin.url, use_keyless=False,
                      auth_configs={"authToken": {"disable_header": True, "use_param": False,
                                                  "use_cookie": False}})
    r = gw.admin("POST", "/tyk/apis", api)
    assert r.status_code == 400
    assert r.json() == {
        "status": "error",
        "message": "Validation of API Definition failed. Reason: all auth sources are disabled for "
                   "authToken, at least one of header/cookie/query must be enabled."}
    assert not (gw.apps / "noauth.json").exists()


def test_add_invalid_definition_validation_message(ro_gw):
    gw = ro_gw
    origin = ro_gw.origin
    api = keyless_api("badtarget", "/bt/", "ftp://127.0.0.1:1/")
    r = gw.admin("POST", "/tyk/apis", api)
    assert r.status_code == 400
    msg = r.json()["message"]
    assert msg.startswith("Validation of API Definition failed. Reason: ") and msg.endswith(".")
    assert not (gw.apps / "badtarget.json").exists()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_api_id_404(ro_gw, method):
    gw = ro_gw
    origin = ro_gw.origin
    r = gw.admin(method, "/tyk/apis/nope", keyless_api("nope", "/nope/", origin.url))
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert not (gw.apps / "nope.json").exists()


def test_get_api(gw):
    r = gw.admin("GET", "/tyk/apis/echo")
    assert r.status_code == 200
    d = r.json()
    assert d["api_id"] == "echo" and d["proxy"]["listen_path"] == "/echo/"


def test_update_api(gw, origin):
    api = keyless_api("echo", "/echo/", origin.url + "/changed")
    r = gw.admin("PUT", "/tyk/apis/echo", api)
    assert r.status_code == 200
    assert r.json() == {"key": "echo", "status": "ok", "action": "modified"}
    assert json.loads((gw.apps / "echo.json").read_text())["proxy"]["target_url"].endswith("/changed")
    assert requests.get(gw.url("/echo/x")).json()["path"] == "/base/x"  # not yet reloaded
    gw.reload()
    assert requests.get(gw.url("/echo/x")).json()["path"] == "/changed/x"


@pytest.mark.parametrize("body_id", ["other", ""], ids=["different", "empty"])
def test_update_id_mismatch_400(ro_gw, body_id):
    gw = ro_gw
    origin = ro_gw.origin
    r = gw.admin("PUT", "/tyk/apis/echo", keyless_api(body_id, "/echo/", origin.url + "/changed"))
    assert r.status_code == 400
    assert r.json() == MISMATCH
    assert "/changed" not in (gw.apps / "echo.json").read_text()


def test_update_malformed_400(ro_gw):
    gw = ro_gw
    r = gw.admin("PUT", "/tyk/apis/echo", raw=b"{oops")
    assert r.status_code == 400 and r.json() == MALFORMED


def test_delete_api(gw, origin):
    assert requests.get(gw.url("/echo/x")).status_code == 200
    r = gw.admin("DELETE", "/tyk/apis/echo")
    assert r.status_code == 200
    assert r.json() == {"key": "echo", "status": "ok", "action": "deleted"}
    assert not (gw.apps / "echo.json").exists()
    gw.reload()
    n = origin.count()
    r = requests.get(gw.url("/echo/x"))
    assert r.status_code == 404
    assert origin.count() == n
    assert gw.admin("GET", "/tyk/apis/echo").status_code == 404
    r = gw.admin("DELETE", "/tyk/apis/echo")
    assert r.status_code == 404 and r.json() == NOT_FOUND


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("bad_id", ["..%2F..%2Fetc", "a%2Fb", "%2e%2e", "..", "a%00b", "bad$id",
                                    "%2E%2E%2Fecho"])
def test_invalid_api_id(ro_gw, method, bad_id):
    gw = ro_gw
    origin = ro_gw.origin
    r = gw.admin(method, f"/tyk/apis/{bad_id}", keyless_api(bad_id, "/evil/", origin.url))
    assert r.status_code in (400, 404), r.text
    if r.status_code == 400:
        assert r.json() == {"status": "error", "message": "Invalid API ID"}
    assert sorted(p.name for p in gw.apps.iterdir()) == ["echo.json"]
    assert sorted(p.name for p in gw.dir.iterdir() if not p.name.startswith("gatehouse.db")) == ["apps", "gatehouse.log", "tyk.conf"]


@pytest.mark.parametrize("bad_id", ["../evil", "a/b", "..", "x y", "a\\b"])
def test_add_with_invalid_api_id_400(ro_gw, bad_id):
    gw = ro_gw
    origin = ro_gw.origin
    r = gw.admin("POST", "/tyk/apis", keyless_api(bad_id, "/evil/", origin.url))
    assert r.status_code == 400
    assert r.json() == {"status": "error", "message": "Invalid API ID"}
    assert sorted(p.name for p in gw.apps.iterdir()) == ["echo.json"]
    assert sorted(p.name for p in gw.dir.iterdir() if not p.name.startswith("gatehouse.db")) == ["apps", "gatehouse.log", "tyk.conf"]


@pytest.mark.parametrize("method,path", [
    ("PATCH", "/tyk/apis"), ("PUT", "/tyk/apis"), ("DELETE", "/tyk/apis"),
    ("PATCH", "/tyk/apis/echo"), ("POST", "/tyk/apis/echo"),
    ("PUT", "/tyk/apis/oas"), ("DELETE", "/tyk/apis/oas"), ("PATCH", "/tyk/apis/oas"),
    ("GET", "/tyk/apis/oas/import"), ("DELETE", "/tyk/apis/oas/import"),
])
def test_method_not_supported_405(ro_gw, method, path):
    gw = ro_gw
    r = gw.admin(method, path, body={})
    assert r.status_code == 405
    assert r.json() == NOT_SUPPORTED


@pytest.mark.parametrize("path", ["/tyk/", "/tyk/nothing", "/tyk/apis/echo/extra", "/tyk/reloads",
                                  "/tyk/apis/oas/x/y/export"])
def test_unknown_tyk_path_404(ro_gw, path):
    gw = ro_gw
    r = gw.admin("GET", path)
    assert r.status_code == 404


def test_admin_responses_are_json_and_not_cached(ro_gw):
    gw = ro_gw
    r = gw.admin("GET", "/tyk/apis")
    assert r.headers.get("Content-Type", "").startswith("application/json")
    assert "no-store" in r.headers.get("Cache-Control", "")


# ---------------------------------------------------------------------------------------------
# /tyk/apis/oas
def test_oas_crud(gw, origin):
    doc = oas_doc("oas1", "/oas/", origin.url + "/o1")
    r = gw.admin("POST", "/tyk/apis/oas", doc)
    assert r.status_code == 200, r.text
    assert r.json() == {"key": "oas1", "status": "ok", "action": "added"}
    assert any(p.name.startswith("oas1") and p.suffix == ".json" for p in gw.apps.iterdir())
    assert requests.get(gw.url("/oas/x")).status_code == 404
    gw.reload()
    r = requests.get(gw.url("/oas/x"))
    assert r.status_code == 200 and r.json()["path"] == "/o1/x"

    # list and get
    lst = gw.admin("GET", "/tyk/apis/oas").json()
    assert isinstance(lst, list)
    assert [d["x-tyk-api-gateway"]["info"]["id"] for d in lst] == ["oas1"]  # classic ones excluded
    got = gw.admin("GET", "/tyk/apis/oas/oas1")
    assert got.status_code == 200
    g = got.json()
    assert g["openapi"] == "3.0.3" and g["info"]["title"] == "OAS title"
    assert g["x-tyk-api-gateway"]["upstream"]["url"] == origin.url + "/o1"
    # the Classic list shows every API, OAS ones included
    assert sorted(a["api_id"] for a in gw.admin("GET", "/tyk/apis").json()) == ["echo", "oas1"]

    # export
    ex = gw.admin("GET", "/tyk/apis/oas/oas1/export")
    assert ex.status_code == 200
    assert ex.json()["x-tyk-api-gateway"]["info"]["id"] == "oas1"
    assert ex.json()["openapi"] == "3.0.3"

    # PUT
    doc2 = oas_doc("oas1", "/oas/", origin.url + "/o2")
    r = gw.admin("PUT", "/tyk/apis/oas/oas1", doc2)
    assert r.status_code == 200
    assert r.json() == {"key": "oas1", "status": "ok", "action": "modified"}
    gw.reload()
    assert requests.get(gw.url("/oas/x")).json()["path"] == "/o2/x"

    # PATCH with a plain OpenAPI document: the Tyk extension is kept
    plain = {"openapi": "3.0.3", "info": {"title": "Patched", "version": "2.0.0"}, "paths": {}}
    r = gw.admin("PATCH", "/tyk/apis/oas/oas1", plain)
    assert r.status_code == 200, r.text
    assert r.json() == {"key": "oas1", "status": "ok", "action": "modified"}
    gw.reload()
    g = gw.admin("GET", "/tyk/apis/oas/oas1").json()
    assert g["info"]["title"] == "Patched"
    assert g["x-tyk-api-gateway"]["upstream"]["url"] == origin.url + "/o2"
    assert requests.get(gw.url("/oas/x")).json()["path"] == "/o2/x"

    # DELETE
    r = gw.admin("DELETE", "/tyk/apis/oas/oas1")
    assert r.status_code == 200
    assert r.json() == {"key": "oas1", "status": "ok", "action": "deleted"}
    assert not any(p.name.startswith("oas1") for p in gw.apps.iterdir())
    gw.reload()
    assert requests.get(gw.url("/oas/x")).status_code == 404
    r = gw.admin("GET", "/tyk/apis/oas/oas1")
    assert r.status_code == 404 and r.json() == NOT_FOUND


def test_oas_generated_id(gw, origin):
    r = gw.admin("POST", "/tyk/apis/oas", oas_doc(None, "/oasgen/", origin.url))
    assert r.status_code == 200, r.text
    key = r.json()["key"]
    assert HEX32.match(key)
    gw.reload()
    assert gw.admin("GET", f"/tyk/apis/oas/{key}").json()["x-tyk-api-gateway"]["info"]["id"] == key
    assert requests.get(gw.url("/oasgen/x")).status_code == 200


def test_oas_get_of_classic_api_400(ro_gw):
    gw = ro_gw
    r = gw.admin("GET", "/tyk/apis/oas/echo")
    assert r.status_code == 400
    assert r.json()["status"] == "error"
    assert "classic" in r.json()["message"].lower()


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_oas_unknown_404(ro_gw, method):
    gw = ro_gw
    origin = ro_gw.origin
    r = gw.admin(method, "/tyk/apis/oas/nope", oas_doc("nope", "/nope/", origin.url))
    assert r.status_code == 404 and r.json() == NOT_FOUND


def test_oas_unknown_export_404(ro_gw):
    gw = ro_gw
    r = gw.admin("GET", "/tyk/apis/oas/nope/export")
    assert r.status_code == 404 and r.json() == NOT_FOUND


def test_oas_put_id_mismatch_400(gw, origin):
    assert gw.admin("POST", "/tyk/apis/oas", oas_doc("oasm", "/oasm/", origin.url)).status_code == 200
    gw.reload()
    r = gw.admin("PUT", "/tyk/apis/oas/oasm", oas_doc("other", "/oasm/", origin.url))
    assert r.status_code == 400 and r.json() == MISMATCH


def test_oas_wrong_type_400(ro_gw):
    gw = ro_gw
    origin = ro_gw.origin
    doc = oas_doc("oast", "/oast/", origin.url)
    doc["x-tyk-api-gateway"]["info"]["state"]["active"] = "yes"
    r = gw.admin("POST", "/tyk/apis/oas", doc)
    assert r.status_code == 400 and r.json() == MALFORMED


def test_oas_validation_failure_400(ro_gw):
    gw = ro_gw
    origin = ro_gw.origin
    doc = oas_doc("oasv", "/oasv/", origin.url)
    del doc["x-tyk-api-gateway"]["upstream"]
    r = gw.admin("POST", "/tyk/apis/oas", doc)
    assert r.status_code == 400
    assert r.json()["message"].startswith("Validation of API Definition failed. Reason: ")


def test_oas_import(gw, origin):
    plain = {"openapi": "3.0.3", "info": {"title": "Imported", "version": "1.0.0"}, "paths": {}}
    r = gw.admin("POST", f"/tyk/apis/oas/import?upstreamURL={origin.url}/imported&listenPath=/imp/",
                 plain)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["action"] == "added" and HEX32.match(body["key"])
    assert requests.get(gw.url("/imp/x")).status_code == 404
    gw.reload()
    r = requests.get(gw.url("/imp/x"))
    assert r.status_code == 200
    assert r.json()["path"] == "/imported/x"
    doc = gw.admin("GET", f"/tyk/apis/oas/{body['key']}").json()
    assert doc["info"]["title"] == "Imported"
    assert doc["x-tyk-api-gateway"]["server"]["listenPath"]["value"] == "/imp/"


def test_oas_import_with_servers_url(gw, origin):
    plain = {"openapi": "3.0.3", "info": {"title": "S", "version": "1"}, "paths": {},
             "servers": [{"url": origin.url + "/srv"}]}
    r = gw.admin("POST", "/tyk/apis/oas/import?listenPath=/srvimp/", plain)
    assert r.status_code == 200, r.text
    gw.reload()
    assert requests.get(gw.url("/srvimp/x")).json()["path"] == "/srv/x"


def test_oas_import_refuses_tyk_extension(ro_gw):
    gw = ro_gw
    origin = ro_gw.origin
    r = gw.admin("POST", f"/tyk/apis/oas/import?upstreamURL={origin.url}",
                 oas_doc("imp2", "/imp2/", origin.url))
    assert r.status_code == 400
    assert r.json()["status"] == "error"


def test_oas_import_malformed(ro_gw):
    gw = ro_gw
    origin = ro_gw.origin
    r = gw.admin("POST", f"/tyk/apis/oas/import?upstreamURL={origin.url}", raw=b"{nope")
    assert r.status_code == 400 and r.json() == MALFORMED


# ---------------------------------------------------------------------------------------------
# Where the control API listens.
def test_separate_control_port(gateway_factory, origin):
    from conftest import free_port
    cport = free_port()
    g = gateway_factory(conf={"control_api_port": cport},
                        apis=[keyless_api("echo", "/echo/", origin.url)])
    # control port: the control API
    r = requests.get(f"http://127.0.0.1:{cport}/tyk/apis", headers={"X-Tyk-Authorization": SECRET})
    assert r.status_code == 200 and [a["api_id"] for a in r.json()] == ["echo"]
    assert requests.get(f"http://127.0.0.1:{cport}/hello").status_code == 200
    assert g.admin("GET", "/tyk/reload?block=true").json() == RELOAD_OK
    # API port: no /tyk/ paths (even with the secret), APIs served
    r = requests.get(g.url("/tyk/apis"), headers={"X-Tyk-Authorization": SECRET})
    assert r.status_code == 404
    assert "api_id" not in r.text
    r = requests.get(g.url("/tyk/reload"), headers={"X-Tyk-Authorization": SECRET})
    assert r.status_code == 404
    assert requests.get(g.url("/echo/x")).status_code == 200
    assert origin.count() == 1
    # control port: does not route APIs
    r = requests.get(f"http://127.0.0.1:{cport}/echo/x", headers={"X-Tyk-Authorization": SECRET})
    assert r.status_code == 404
    r = requests.get(f"http://127.0.0.1:{cport}/echo/x")
    assert r.status_code in (403, 404)
    assert origin.count() == 1


def test_control_api_hostname(gateway_factory, origin):
    g = gateway_factory(conf={"control_api_hostname": "admin.test"},
                        apis=[keyless_api("echo", "/echo/", origin.url)])
    h = {"X-Tyk-Authorization": SECRET}
    r = requests.get(g.url("/tyk/apis"), headers={**h, "Host": "admin.test"})
    assert r.status_code == 200 and [a["api_id"] for a in r.json()] == ["echo"]
    r = requests.get(g.url("/tyk/apis"), headers={**h, "Host": "ADMIN.test:8080"})
    assert r.status_code == 200
    for host in ("127.0.0.1", "other.test", "admin.test.evil"):
        r = requests.get(g.url("/tyk/apis"), headers={**h, "Host": host})
        assert r.status_code == 404, host
        assert "api_id" not in r.text
        r = requests.get(g.url("/tyk/reload"), headers={**h, "Host": host})
        assert r.status_code == 404, host
    # APIs are served whatever the Host
    assert requests.get(g.url("/echo/x"), headers={"Host": "other.test"}).status_code == 200
    assert requests.get(g.url("/echo/x"), headers={"Host": "admin.test"}).status_code == 200


def test_chunked_body_accepted(gw, origin):
    payload = json.dumps(keyless_api("chunky", "/chunky/", origin.url)).encode()

    def gen():
        for i in range(0, len(payload), 16):
            yield payload[i:i + 16]

    r = requests.post(gw.control_url("/tyk/apis"), data=gen(),
                      headers={"X-Tyk-Authorization": SECRET})
    assert r.status_code == 200, r.text
    assert r.json() == {"key": "chunky", "status": "ok", "action": "added"}


def test_expect_100_continue_on_control_api(gw, origin):
    """A client that waits for 100 Continue (RFC 9110 10.1.1) must get it (or a final status)
    without first sending the body."""
    from conftest import RawClient
    payload = json.dumps(keyless_api("expect", "/expect/", origin.url)).encode()
    c = RawClient(gw.port)
    try:
        c.send(f"POST /tyk/apis HTTP/1.1\r\nHost: gw.test\r\nX-Tyk-Authorization: {SECRET}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
               f"Expect: 100-continue\r\n\r\n".encode())
        try:
            interim = c.read_response(timeout=2)
        except AssertionError as e:
            raise AssertionError("no 100 Continue (nor a final answer) within 2 s: " + str(e))
        assert interim.status == 100
        c.send(payload)
        r = c.read_response()
        assert r.status == 200
        assert json.loads(r.body) == {"key": "expect", "status": "ok", "action": "added"}
    finally:
        c.close()


def test_delete_api_loaded_from_other_file_name(gateway_factory, origin):
    g = gateway_factory(start=False)
    g.add_api_file(keyless_api("cn", "/cn/", origin.url), name="custom-name.json")
    g.start()
    r = g.admin("DELETE", "/tyk/apis/cn")
    assert r.status_code == 200 and r.json()["action"] == "deleted"
    assert not (g.apps / "custom-name.json").exists()
    g.reload()
    assert requests.get(g.url("/cn/x")).status_code == 404


def test_update_api_loaded_from_other_file_name(gateway_factory, origin):
    """The update must win after reload, whatever the name of the file it came from."""
    g = gateway_factory(start=False)
    g.add_api_file(keyless_api("zlegacy", "/legacy/", origin.url + "/old"), name="a-legacy.json")
    g.start()
    assert requests.get(g.url("/legacy/x")).json()["path"] == "/old/x"
    r = g.admin("PUT", "/tyk/apis/zlegacy", keyless_api("zlegacy", "/legacy/", origin.url + "/new"))
    assert r.status_code == 200 and r.json()["action"] == "modified"
    g.reload()
    assert requests.get(g.url("/legacy/x")).json()["path"] == "/new/x"
    assert g.admin("GET", "/tyk/apis/zlegacy").json()["proxy"]["target_url"] == origin.url + "/new"


def test_oas_empty_id_generated(gw, origin):
    r = gw.admin("POST", "/tyk/apis/oas", oas_doc("", "/oasempty/", origin.url))
    assert r.status_code == 200, r.text
    assert HEX32.match(r.json()["key"])
