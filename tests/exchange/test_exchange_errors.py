"""exchange.errors: classification of real Upbit error bodies, retry policy, no secret leaks."""

from __future__ import annotations

import pytest

from exchange.errors import (
    AuthFailed,
    CircuitOpen,
    DuplicateIdentifier,
    ErrorKind,
    ExchangeError,
    InsufficientFunds,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    OrderOutcomeUnknown,
    OrderRejectedByVenue,
    RateLimited,
    TransientExchangeError,
    UnderMinimum,
    from_response,
    is_retryable,
    network_error,
    redact,
)


def _body(name: str | int, message: str) -> dict[str, object]:
    return {"error": {"name": name, "message": message}}


# Bodies as Upbit sends them (names/messages from the docs, ccxt's handleErrors comments, pyupbit).
REAL = [
    (401, "invalid_access_key", "잘못된 엑세스 키입니다.", AuthFailed, ErrorKind.INVALID_KEY),
    (401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다.", AuthFailed, ErrorKind.INVALID_KEY),
    (401, "expired_access_key", "This key has expired.", AuthFailed, ErrorKind.INVALID_KEY),
    (401, "invalid_query_payload", "JWT 헤더의 페이로드가 올바르지 않습니다.", AuthFailed, ErrorKind.INVALID_SIGNATURE),
    (401, "nonce_used", "이미 요청한 nonce값이 다시 전송되었습니다.", AuthFailed, ErrorKind.NONCE),
    (401, "no_authorization_i_p", "This is not a verified IP.", AuthFailed, ErrorKind.IP_NOT_ALLOWED),
    (401, "out_of_scope", "권한이 부족합니다.", AuthFailed, ErrorKind.PERMISSION),
    (401, "thirdparty_agreement_required", "개인정보 제 3자 제공 동의가 필요합니다.", AuthFailed, ErrorKind.PERMISSION),
    (400, "insufficient_funds_bid", "주문가능한 금액(KRW)이 부족합니다.", InsufficientFunds, ErrorKind.INSUFFICIENT_FUNDS),
    (400, "insufficient_funds_ask", "주문가능한 금액(BTC)이 부족합니다.", InsufficientFunds, ErrorKind.INSUFFICIENT_FUNDS),
    (400, "under_min_total_bid", "최소주문금액 이상으로 주문해주세요", UnderMinimum, ErrorKind.UNDER_MINIMUM),
    (400, "under_min_total_ask", "최소주문금액 이상으로 주문해주세요", UnderMinimum, ErrorKind.UNDER_MINIMUM),
    (400, "invalid_price_bid", "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요.", InvalidOrder,
     ErrorKind.INVALID_ORDER),
    (400, "invalid_price_ask", "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요.", InvalidOrder,
     ErrorKind.INVALID_ORDER),
    (400, "validation_error", "side is missing, side does not have a valid value", InvalidOrder, ErrorKind.INVALID_ORDER),
    (400, "create_bid_error", "주문 요청 정보가 올바르지 않습니다.", InvalidOrder, ErrorKind.INVALID_ORDER),
    (400, "volume_too_large", "주문 수량이 너무 큽니다.", InvalidOrder, ErrorKind.INVALID_ORDER),
    (400, 400, "Missing request parameter error. Check the required parameters!", OrderRejectedByVenue,
     ErrorKind.INVALID_ORDER),
    (400, "market_offline", "주문 가능한 상태가 아닙니다.", OrderRejectedByVenue, ErrorKind.MARKET_OFFLINE),
    (404, "order_not_found", "주문을 찾지 못했습니다.", OrderNotFound, ErrorKind.NOT_FOUND),
]


@pytest.mark.parametrize(("status", "name", "message", "cls", "kind"), REAL)
def test_real_upbit_error_bodies_are_classified(status: int, name: str | int, message: str,
                                                 cls: type[ExchangeError], kind: ErrorKind) -> None:
    err = from_response(status, _body(name, message), endpoint="POST /v1/orders")
    assert type(err) is cls
    assert err.kind is kind
    assert err.status == status
    assert err.name == str(name)
    assert err.message == message
    assert err.hint
    text = str(err)
    assert "\n" not in text
    assert message in text and "fix:" in text and "POST /v1/orders" in text
    assert not is_retryable(err)


def test_duplicate_identifier_is_distinct() -> None:
    # UNCONFIRMED name: the simulator's choice, and a message-only variant.
    err = from_response(400, _body("duplicate_identifier", "이미 사용된 identifier 입니다."), identifier="id-1")
    assert isinstance(err, DuplicateIdentifier) and err.identifier == "id-1"
    err = from_response(400, _body("validation_error", "identifier already exists"), identifier="id-2")
    assert isinstance(err, DuplicateIdentifier)
    assert err.kind is ErrorKind.DUPLICATE_IDENTIFIER
    assert not is_retryable(err)


def test_rate_limit_and_block() -> None:
    err = from_response(429, "Too many API requests.", group="order")  # plain text, as pyupbit describes
    assert isinstance(err, RateLimited) and err.kind is ErrorKind.RATE_LIMITED and err.group == "order"
    assert is_retryable(err)
    err = from_response(429, _body("too_many_requests", "Too many API requests."), headers={"Retry-After": "2"})
    assert err.retry_after == 2.0  # type: ignore[attr-defined]
    blocked = from_response(418, _body("too_many_requests", "Too many API requests. Blocked for 30 seconds."))
    assert isinstance(blocked, RateLimited) and blocked.kind is ErrorKind.BLOCKED
    assert blocked.retry_after == 30.0
    assert not is_retryable(blocked)


def test_server_and_network_errors_are_retryable() -> None:
    for status in (500, 502, 503, 504):
        err = from_response(status, "<html>bad gateway</html>")
        assert isinstance(err, TransientExchangeError) and err.kind is ErrorKind.SERVER
        assert is_retryable(err)
    assert is_retryable(network_error("ConnectionError: reset"))
    assert network_error("x").kind is ErrorKind.NETWORK


def test_never_retried() -> None:
    assert not is_retryable(OrderOutcomeUnknown("id-1", cause="ReadTimeout"))
    assert not is_retryable(CircuitOpen("open", group="order"))
    assert not is_retryable(MalformedResponse("bad json", status=200))
    assert not is_retryable(ValueError("not ours"))
    assert not is_retryable(ConnectionError("a vendor/builtin exception is not ours"))


def test_unknown_answers_fall_back_on_status() -> None:
    assert type(from_response(401, {"weird": 1})) is AuthFailed
    assert from_response(403, _body("something_new", "권한")).kind is ErrorKind.PERMISSION
    assert type(from_response(404, _body(404, "No route"))) is OrderNotFound
    assert type(from_response(400, _body("brand_new_error", "?"))) is OrderRejectedByVenue
    assert from_response(409, "conflict").kind is ErrorKind.UNKNOWN
    assert from_response(400, _body("insufficient_funds_whatever", "x")).kind is ErrorKind.INSUFFICIENT_FUNDS


def test_outcome_unknown_carries_the_identifier() -> None:
    err = OrderOutcomeUnknown("bot-42", cause="ReadTimeout", endpoint="POST /v1/orders")
    assert err.identifier == "bot-42"
    assert "bot-42" in str(err) and "look it up" in str(err)


def test_secrets_are_masked() -> None:
    access, secret = "AccessKeyABCDEFGHIJ1234", "SecretKeyZYXWVUTS98765"
    assert redact(f"key {access} and {secret}", [access, secret, None, ""]) == "key Acce…1234 and Secr…8765"
    err = from_response(401, _body("invalid_access_key", f"bad key {access}"), secrets=[access, secret])
    assert access not in str(err) and "Acce…1234" in str(err)
    assert access not in network_error(f"failed for {access}", secrets=[access]).message
