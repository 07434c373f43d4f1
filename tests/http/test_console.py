#!/usr/bin/python3
"""test_console.py - the service console in a real browser (Debian's chromium, headless, driven
through chromedriver by python3-selenium) against a real allotd with a token.

Usage: test_console.py ALLOTD_PATH OUT_DIR. An agent signs in with the token once, finds an order
and changes its address, cancels another, creates a return for a shipped one and reads its label,
places an order on behalf of a customer and sees it in that customer's list, looks at the queues
and at a SKU. Each view's screenshot is written to OUT_DIR/console-*.png. Every change is checked
through the API, not only on screen.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

TOKEN = "console-test-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, allotd):
        self.dir = tempfile.mkdtemp(prefix="allot-console-")
        token_path = os.path.join(self.dir, "token")
        with open(token_path, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_path, 0o600)
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "allotd.log"), "w")
        self.proc = subprocess.Popen(
            [allotd, "--listen", "127.0.0.1:%d" % free_port(), "--data-dir",
             os.path.join(self.dir, "data"), "--http", "127.0.0.1:%d" % self.port,
             "--auth-token-file", token_path], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url("/healthz"), timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("allotd did not start")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def call(self, method, params):
        request = urllib.request.Request(
            self.url("/v1/" + method), data=json.dumps(params).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError("%s %s: %s" % (method, params, error.read().decode()))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def seed(server):
    server.call("location.put", {"id": "BER", "type": "warehouse", "lat": 52.52, "lon": 13.40})
    server.call("location.put", {"id": "HAM", "type": "warehouse", "lat": 53.55, "lon": 9.99,
                                 "priority": 200})
    for sku, qty in (("SHIRT-M", 20), ("MUG", 5), ("LAMP", 2)):
        server.call("stock.set", {"sku": sku, "location": "BER", "on_hand": qty})
    server.call("stock.set", {"sku": "SHIRT-M", "location": "HAM", "on_hand": 7})
    server.call("order.create", {"id": "ord-1", "customer": "cust-17",
                                 "lines": [{"sku": "SHIRT-M", "qty": 2}],
                                 "address": {"name": "Ada", "city": "Berlin"}})
    server.call("order.create", {"id": "ord-2", "customer": "cust-17",
                                 "lines": [{"sku": "MUG", "qty": 1}]})
    server.call("order.create", {"id": "ord-3", "customer": "cust-17",
                                 "lines": [{"sku": "LAMP", "qty": 1}]})
    server.call("order.pay", {"id": "ord-3", "status": "captured"})
    server.call("order.release", {"id": "ord-3"})
    server.call("shipment.ship", {"order": "ord-3", "shipment": "S1", "tracking": "TRK-9"})
    server.call("order.create", {"id": "ord-4", "customer": "cust-5",
                                 "lines": [{"sku": "MUG", "qty": 1}]})
    server.call("order.hold", {"id": "ord-4", "reason": "fraud check"})


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main():
    allotd, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    server = Server(allotd)
    driver = None
    try:
        seed(server)
        driver = browser()
        wait = WebDriverWait(driver, 10)
        shot = lambda name: driver.save_screenshot(os.path.join(out_dir, "console-%s.png" % name))
        visible = lambda id_: wait.until(EC.visibility_of_element_located((By.ID, id_)))
        text_in = lambda id_, text: wait.until(EC.text_to_be_present_in_element((By.ID, id_), text))
        by_id = driver.find_element

        # The token is asked once and kept for the tab.
        driver.get(server.url("/"))
        visible("token-view")
        shot("token")
        by_id(By.ID, "token-input").send_keys(TOKEN)
        by_id(By.ID, "token-form").submit()
        visible("find-view")

        # Find a customer's orders, then one order, and change its address.
        by_id(By.ID, "find-customer").send_keys("cust-17")
        by_id(By.ID, "find-form").submit()
        text_in("customer-table", "ord-3")
        rows = driver.find_elements(By.CSS_SELECTOR, "#customer-table tbody tr")
        assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["ord-3", "ord-2", "ord-1"]
        shot("customer")
        by_id(By.ID, "find-order").send_keys("ord-1")
        by_id(By.ID, "find-customer").clear()
        by_id(By.ID, "find-form").submit()
        text_in("order-id", "ord-1")
        text_in("order-history", "order create")
        street = by_id(By.ID, "modify-street")
        street.send_keys("Unter den Linden 1")
        city = by_id(By.ID, "modify-city")
        city.clear()
        city.send_keys("Potsdam")
        by_id(By.ID, "modify-save").click()
        text_in("notice", "Delivery details saved")
        text_in("order-history", "changed: address")
        shot("order")
        order = server.call("order.get", {"id": "ord-1"})
        assert order["address"] == {"name": "Ada", "street": "Unter den Linden 1",
                                    "city": "Potsdam"}, order["address"]

        # Cancel another order with a reason.
        driver.get(server.url("/#/order/ord-2"))
        text_in("order-id", "ord-2")
        by_id(By.ID, "action-reason").send_keys("customer changed their mind")
        by_id(By.ID, "cancel-button").click()
        text_in("order-state", "cancelled")
        assert server.call("order.get", {"id": "ord-2"})["state"] == "cancelled"
        # An action the state forbids is explained in words, not as a code.
        by_id(By.ID, "hold-button").get_attribute("disabled")
        driver.execute_script("document.getElementById('hold-button').disabled = false;")
        by_id(By.ID, "hold-button").click()
        text_in("notice", "not possible while the order is cancelled")
        assert "INVALID_TRANSITION" not in by_id(By.ID, "notice").text
        shot("cancelled")

        # Create a return for the shipped order and show its label.
        driver.get(server.url("/#/order/ord-3"))
        text_in("order-id", "ord-3")
        qty = wait.until(EC.visibility_of_element_located(
            (By.CSS_SELECTOR, "#return-lines input[data-sku='LAMP']")))
        qty.clear()
        qty.send_keys("1")
        by_id(By.ID, "return-reason").send_keys("arrived broken")
        by_id(By.ID, "return-create").click()
        visible("return-label")
        label = by_id(By.ID, "return-label-text").text
        assert label, "the return's label is shown"
        returns = server.call("order.get", {"id": "ord-3"}).get("returns", [])
        assert len(returns) == 1 and returns[0]["label"] == label, returns
        shot("return")

        # Place an order on behalf of a customer, with live availability, and see it listed.
        driver.get(server.url("/#/new"))
        visible("new-view")
        by_id(By.ID, "new-customer").send_keys("cust-42")
        by_id(By.ID, "new-lat").send_keys("52.5")
        by_id(By.ID, "new-lon").send_keys("13.4")
        by_id(By.ID, "new-name").send_keys("Grace")
        by_id(By.ID, "new-city").send_keys("Berlin")
        by_id(By.CSS_SELECTOR, "#new-lines .line-sku").send_keys("SHIRT-M")
        qty = by_id(By.CSS_SELECTOR, "#new-lines .line-qty")
        qty.clear()
        qty.send_keys("3")
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#new-lines .line-avail"),
                                                    "25"))
        shot("new-order")
        by_id(By.ID, "new-submit").click()
        text_in("customer-name", "cust-42")
        text_in("customer-table", "cs-")
        placed = server.call("order.list", {"customer": "cust-42"})["orders"]
        assert len(placed) == 1 and placed[0]["lines"] == [{"sku": "SHIRT-M", "qty": 3}], placed
        assert placed[0]["address"] == {"name": "Grace", "city": "Berlin"}, placed[0]
        shot("placed")

        # Queues: on hold, paid but not released.
        driver.get(server.url("/#/queues"))
        text_in("queue-hold", "ord-4")
        text_in("queue-hold", "fraud check")
        shot("queues")

        # A SKU at every location.
        driver.get(server.url("/#/sku/SHIRT-M"))
        text_in("sku-positions", "HAM")
        text_in("sku-totals", "On hand 27")
        shot("sku")
    except Exception:
        if driver is not None:
            driver.save_screenshot(os.path.join(out_dir, "console-failure.png"))
        sys.stderr.write(open(os.path.join(server.dir, "allotd.log")).read()[-4000:])
        raise
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
    print("console: every view worked; screenshots in", out_dir)


if __name__ == "__main__":
    main()
