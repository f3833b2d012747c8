"""
office_helpers.py — talking CSO1 to certseald from the office tests (real ZeroMQ sockets,
real CURVE), and the files those tests need: worker allow-lists, gateway test keys,
signed Alipay and WeChat Pay notifications.
"""

import base64
import configparser
import json
import os
import subprocess
import sys
import time
import urllib.parse

import zmq
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import office_schema
from conftest import BUILD_DIR, DEV_CONF, TEST_MODULES, write_config

OFFICE_CLI = os.path.join(BUILD_DIR, "cli", "certseal-office")
OFFICE_PLUGINS = os.path.join(TEST_MODULES, "office")
HEARTBEAT_MS = 200
LIVENESS = 3

ALIPAY_APP_ID = "2021000000000001"
WECHAT_MCHID = "1900000001"
WECHAT_APPID = "wx0000000000000001"
APIV3_KEY = b"0123456789abcdef0123456789abcdef"
# Platform certificate serials as WeChat Pay writes them (hex, upper case).
WECHAT_SERIALS = ("5157F09EFDC096DE15EBE81A47057A72", "7132D72A03E93CDDF8C03BBD1F37EEDF")


def read_key_file(path):
    kf = configparser.RawConfigParser()
    kf.read(path)
    return kf["worker"]["public"], kf["worker"]["secret"]


class OfficeEnv:
    """A state directory, an allow-list of workers and gateway keys for one daemon."""

    def __init__(self, workdir, roles_by_user=None, plugin_dir=OFFICE_PLUGINS, **office):
        self.workdir = workdir
        self.office_d = os.path.join(workdir, "office.d")
        os.makedirs(self.office_d, exist_ok=True)
        self.keys = {}
        for user, roles in (roles_by_user or {}).items():
            self.add_worker(user, roles)
        self.alipay_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # Two WeChat Pay platform certificates, as during a rotation: notifications name
        # theirs by serial (Wechatpay-Serial).
        self.wechat_keys = {}
        cert_files = []
        for serial in WECHAT_SERIALS:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.wechat_keys[serial] = key
            cert_files.append(self._write_cert(key, serial, f"wechat-{serial[-4:]}.pem"))
        self.wechat_serial = WECHAT_SERIALS[0]
        self.wechat_key = self.wechat_keys[self.wechat_serial]
        self._write_pub(self.alipay_key, "alipay.pem")
        apiv3 = os.path.join(workdir, "apiv3.key")
        with open(apiv3, "wb") as f:
            f.write(APIV3_KEY)
        os.chmod(apiv3, 0o600)
        settings = {"heartbeat_ms": str(HEARTBEAT_MS), "liveness": str(LIVENESS),
                    "claim_ms": "60000"}
        settings.update(office)
        self.config = write_config(
            os.path.join(workdir, "office.conf"), DEV_CONF,
            daemon={"plugin_dir": plugin_dir, "office_dir": self.office_d},
            office=settings,
            payment={"alipay_app_id": ALIPAY_APP_ID,
                     "alipay_public_key": os.path.join(workdir, "alipay.pem"),
                     "wechat_mchid": WECHAT_MCHID, "wechat_appid": WECHAT_APPID,
                     "wechat_platform_certificates": ";".join(cert_files),
                     "wechat_apiv3_key_file": apiv3})

    def _write_pub(self, key, name):
        with open(os.path.join(self.workdir, name), "wb") as f:
            f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))

    def _write_cert(self, key, serial, name):
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Tenpay.com Root CA")])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(int(serial, 16))
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365))
                .sign(key, hashes.SHA256()))
        path = os.path.join(self.workdir, name)
        with open(path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def add_worker(self, user, roles):
        key_path = os.path.join(self.workdir, f"{user}.key")
        out = subprocess.run([OFFICE_CLI, "--json", "keygen", "--output", key_path],
                             capture_output=True, text=True, check=True)
        public = json.loads(out.stdout)["public_key"]
        with open(os.path.join(self.office_d, f"{user}.conf"), "w") as f:
            f.write(f"[worker]\nkey = {public}\nuser = {user}\nroles = {roles}\n")
        self.keys[user] = key_path
        return key_path

    # --- notifications signed by the test gateway keys ---------------------------------

    def alipay_form(self, order_id, total="0.00", trade_no="2026112422001", status="TRADE_SUCCESS",
                    tamper=None):
        params = {"app_id": ALIPAY_APP_ID, "out_trade_no": order_id, "total_amount": total,
                  "trade_status": status, "trade_no": trade_no, "notify_id": "n" + trade_no,
                  "subject": "证书新办", "charset": "utf-8", "buyer_id": ""}
        # As Alipay signs (and its SDK checks): all but sign and sign_type, empty values kept.
        content = "&".join(f"{k}={params[k]}" for k in sorted(params))
        sig = self.alipay_key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
        params["sign"] = base64.b64encode(sig).decode()
        params["sign_type"] = "RSA2"
        if tamper:
            params.update(tamper)
        return urllib.parse.urlencode(params)

    def wechat_notification(self, order_id, total=0, transaction_id="4200000001", ts=None,
                            tamper_body=False, state="SUCCESS", serial=None):
        resource = {"mchid": WECHAT_MCHID, "appid": WECHAT_APPID, "out_trade_no": order_id,
                    "transaction_id": transaction_id, "trade_state": state,
                    "amount": {"total": total, "payer_total": total, "currency": "CNY"}}
        nonce = "abcdefghijkl"
        aad = "transaction"
        ct = AESGCM(APIV3_KEY).encrypt(nonce.encode(), json.dumps(resource).encode(), aad.encode())
        body = json.dumps({"id": "evt-" + transaction_id, "event_type": "TRANSACTION.SUCCESS",
                           "resource_type": "encrypt-resource",
                           "resource": {"algorithm": "AEAD_AES_256_GCM",
                                        "ciphertext": base64.b64encode(ct).decode(),
                                        "associated_data": aad, "nonce": nonce}})
        ts = str(int(time.time()) if ts is None else ts)
        hdr_nonce = "n0nce" + transaction_id
        message = f"{ts}\n{hdr_nonce}\n{body}\n".encode()
        serial = serial or self.wechat_serial
        sig = self.wechat_keys.get(serial, self.wechat_key).sign(message, padding.PKCS1v15(),
                                                                 hashes.SHA256())
        if tamper_body:
            body = body.replace('"TRANSACTION.SUCCESS"', '"TRANSACTION.SUCCESS "')
        headers = {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": hdr_nonce,
                   "Wechatpay-Signature": base64.b64encode(sig).decode(),
                   "Wechatpay-Serial": serial}
        return headers, body


def office_info(state_dir, timeout=10):
    path = os.path.join(state_dir, "office", "info.json")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def serving_office(d):
    """A module's daemon fixture: @d started with its office up, yielded, cleaned up after."""
    try:
        d.start()
        office_info(d.state_dir)
        yield d
    finally:
        d.cleanup()


class Worker:
    """A DEALER with a CURVE key pair, speaking CSO1. Every message it sends (but raw
    frames, which tests use to send broken ones) and receives is checked against the
    JSON Schemas of dbus/office-schema/ (office_schema.py)."""

    def __init__(self, state_dir, key_file=None, keypair=None, ctx=None):
        info = office_info(state_dir)
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if keypair is None:
            keypair = read_key_file(key_file or os.path.join(state_dir, "office", "admin.key"))
        self.sock.curve_serverkey = info["server_public_key"].encode()
        self.sock.curve_publickey = keypair[0].encode()
        self.sock.curve_secretkey = keypair[1].encode()
        self.sock.connect(info["endpoint"])
        self.next_id = 0

    def send(self, verb, body=None, raw=None):
        if raw is not None:
            self.sock.send_multipart(raw)
            return
        office_schema.check_sent(verb, body)
        frames = [b"CSO1", verb.encode()]
        if body is not None:
            frames.append(json.dumps(body).encode())
        self.sock.send_multipart(frames)

    def recv(self, timeout=5.0, skip_heartbeats=True, heartbeat=True):
        """The next message; while waiting, heartbeat (like a live worker) unless told not to."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return None
            if not self.sock.poll(int(min(left, 0.1) * 1000)):
                if heartbeat:
                    try:
                        self.sock.send_multipart([b"CSO1", b"HEARTBEAT"], zmq.NOBLOCK)
                    except zmq.Again:
                        pass  # not connected (yet, or refused)
                continue
            frames = self.sock.recv_multipart()
            verb = frames[1].decode()
            assert frames[0] == b"CSO1" and len(frames) == 3, frames
            body = json.loads(frames[2])
            office_schema.check_received(verb, body)
            if skip_heartbeats and verb == "HEARTBEAT":
                continue
            return verb, body

    def call(self, method, params=None, timeout=5.0):
        self.next_id += 1
        cid = self.next_id
        self.send("CALL", {"id": cid, "method": method, "params": params or {}})
        while True:
            got = self.recv(timeout)
            assert got is not None, f"no answer to {method}"
            verb, body = got
            if body.get("id") == cid:
                if verb == "RESULT":
                    office_schema.check_result(method, body["result"])
                return verb, body

    def ok(self, method, params=None):
        verb, body = self.call(method, params)
        assert verb == "RESULT", f"{method}: {body}"
        return body["result"]

    def close(self):
        self.sock.close(0)


def run_office(state_dir, *args, key=None, timeout=30):
    cmd = [OFFICE_CLI, "--state-dir", state_dir]
    if key:
        cmd += ["--key", key]
    return subprocess.run(cmd + list(args), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout,
                          env=dict(os.environ, LC_ALL="C.UTF-8"))


def run_office_json(state_dir, *args, key=None):
    r = run_office(state_dir, "--json", *args, key=key)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None
