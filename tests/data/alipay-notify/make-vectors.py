#!/usr/bin/python3
"""Make the Alipay notification vectors of this directory (README.md says what each is)."""
import base64
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
with open("public.pem", "wb") as f:
    f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))
base = {"app_id": "2021000000000001", "out_trade_no": "ORDER-VECTOR-1", "total_amount": "300.00",
        "trade_status": "TRADE_SUCCESS", "trade_no": "2026120322001400000000000001",
        "notify_id": "2026120300222000000000000001", "notify_type": "trade_status_sync",
        "notify_time": "2026-12-03 10:00:00", "subject": "证书新办", "charset": "utf-8",
        "version": "1.0", "buyer_id": "", "passback_params": "", "auth_app_id": "2021000000000001"}


def content(p, with_sign_type=False):
    """The SDK's content: no sign (nor sign_type unless asked), empty values kept, sorted."""
    keys = sorted(k for k in p if k and k != "sign" and (with_sign_type or k != "sign_type"))
    return "&".join(f"{k}={p[k]}" for k in keys)


def sign(text):
    return base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def write(name, params):
    with open(name, "w") as f:
        f.write(urllib.parse.urlencode(params) + "\n")


p = dict(base, sign_type="RSA2")
p["sign"] = sign(content(p))
write("sdk.form", p)
p = dict(base)
p["sign"] = sign(content(p))
write("no-sign-type.form", p)
p = dict(base, sign_type="RSA2")
p["sign"] = sign(content(p, with_sign_type=True))
write("fallback.form", p)
p = dict(base, sign_type="RSA2")
p["sign"] = sign("&".join(f"{k}={p[k]}" for k in sorted(p)
                          if k not in ("sign", "sign_type") and p[k] != ""))
write("empty-dropped.form", p)
