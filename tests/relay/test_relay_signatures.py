"""Signature algorithms against the providers' own published worked examples."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

from relay.providers.aliyun import percent_encode, rpc_signature
from relay.providers.dingtalk import dingtalk_sign
from relay.providers.feishu import feishu_sign
from relay.providers.tencent import tc3_authorization
from relay.providers.webhook import webhook_signature


def test_aliyun_rpc_signature_matches_sms_doc_example() -> None:
    # Vector: Aliyun SMS "签名机制" (HTTP 协议及签名, https://help.aliyun.com/document_detail/101343.html),
    # the worked SendSms GET example with AccessKeyId testId / secret testSecret, whose documented
    # Signature is zJDF+Lrzhj/ThnlvIToysFRq6t4= (URL-encoded zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D).
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    signature = rpc_signature("GET", params, "testSecret")
    assert signature == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert percent_encode(signature) == "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D"


def test_aliyun_percent_encoding_rules() -> None:
    # Same document: space is %20 (not +), '*' is %2A, '~' stays.
    assert percent_encode("a b*c~d/") == "a%20b%2Ac~d%2F"


def test_tencent_tc3_matches_signature_v3_doc_example() -> None:
    # Vector: Tencent Cloud API 3.0 "Signature v3" (签名方法 v3) document, worked example for CVM
    # DescribeInstances (e.g. https://www.tencentcloud.com/document/api/213/30654): timestamp 1551113065,
    # SecretKey Gu5t9xGARNpq86cd98joQYCN3EXAMPLE, documented HashedRequestPayload 35e9c5b0..., hashed
    # canonical request 5ffe6a04... and Signature 72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168.
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    assert hashlib.sha256(payload).hexdigest() == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    auth = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        "cvm",
        "cvm.tencentcloudapi.com",
        "application/json; charset=utf-8",
        payload,
        1551113065,
    )
    assert auth == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_dingtalk_sign_follows_robot_doc_recipe() -> None:
    # DingTalk custom robot security settings (加签, open.dingtalk.com "自定义机器人安全设置"): sign =
    # urlEncode(base64(HmacSHA256(key=secret, msg=timestamp + "\n" + secret))). No published vector, so
    # the recipe is recomputed step by step; the secret contains '+'-producing bytes to test urlencoding.
    ts, secret = 1700000000000, "SEC0123456789abcdef"
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    expected = urllib.parse.quote_plus(base64.b64encode(mac).decode())
    assert dingtalk_sign(ts, secret) == expected
    assert "+" not in dingtalk_sign(ts, secret) and "/" not in dingtalk_sign(ts, secret)


def test_feishu_sign_uses_string_as_key_and_empty_message() -> None:
    # Feishu custom bot "签名校验" (open.feishu.cn bot-v3 custom bot guide): the HMAC-SHA256 key is
    # timestamp + "\n" + secret and the message is empty; the result is base64-encoded.
    ts, secret = 1700000000, "feishu-secret"
    key = f"{ts}\n{secret}".encode()
    assert feishu_sign(ts, secret) == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert feishu_sign(ts, secret) != feishu_sign(ts + 1, secret)


def test_webhook_signature_covers_timestamp_and_body() -> None:
    sig = webhook_signature("s3cret", "1700000000", b'{"a":1}')
    assert sig == "sha256=" + hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert webhook_signature("s3cret", "1700000001", b'{"a":1}') != sig
