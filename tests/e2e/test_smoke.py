import requests

from conftest import keyless_api


def test_keyless_proxy_and_404(gateway_factory, origin):
    gw = gateway_factory(apis=[keyless_api("echo", "/echo/", origin.url + "/base")])
    r = requests.get(gw.url("/echo/x?a=1"))
    assert r.status_code == 200
    seen = r.json()
    assert seen["path"] == "/base/x?a=1"
    r = requests.get(gw.url("/nothing"))
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found"}
    assert origin.count() == 1
