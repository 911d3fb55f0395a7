"""Upbit's REST error answers: ``{"error":{"name":…,"message":…}}`` with the documented status.

Every refusal the simulator gives is an :class:`ApiError`; the HTTP layer turns it into the body
and status. Names and messages follow ``docs/upbit-api.md`` §3; the constructors below are the only
place a name is spelled, so a test can compare against them.
"""

from __future__ import annotations

import orjson

__all__ = ["ApiError"]


class ApiError(Exception):
    """A request the simulated Upbit refuses: HTTP ``status`` and Upbit's ``name``/``message``."""

    def __init__(self, status: int, name: str | int, message: str) -> None:
        """``name`` is occasionally numeric at Upbit (e.g. 400, 404), so both are allowed."""
        super().__init__(status, name, message)
        self.status = status
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return f"{self.status} {self.name}: {self.message}"

    def body(self) -> bytes:
        """The JSON body Upbit sends for this error."""
        return orjson.dumps({"error": {"name": self.name, "message": self.message}})

    # --- 401: authentication (docs/upbit-api.md §3.5 "401") -------------------------

    @classmethod
    def no_token(cls) -> ApiError:
        # UNCONFIRMED: the name for a request without an Authorization header is not documented;
        # ``no_authorization_token`` is what public Upbit client code handles.
        return cls(401, "no_authorization_token", "인증 토큰이 존재하지 않습니다.")

    @classmethod
    def jwt_verification(cls, why: str = "") -> ApiError:
        message = "Jwt 토큰 검증에 실패했습니다."
        return cls(401, "jwt_verification", f"{message} ({why})" if why else message)

    @classmethod
    def invalid_access_key(cls) -> ApiError:
        return cls(401, "invalid_access_key", "잘못된 엑세스 키입니다.")

    @classmethod
    def expired_access_key(cls) -> ApiError:
        return cls(401, "expired_access_key", "API 키가 만료되었습니다.")

    @classmethod
    def nonce_used(cls) -> ApiError:
        return cls(401, "nonce_used", "이미 요청한 nonce값이 다시 전송되었습니다.")

    @classmethod
    def invalid_query_payload(cls) -> ApiError:
        return cls(401, "invalid_query_payload", "JWT 헤더의 페이로드가 올바르지 않습니다.")

    # --- 400: request and order validation ----------------------------------------------

    @classmethod
    def validation(cls, message: str) -> ApiError:
        return cls(400, "validation_error", message)

    @classmethod
    def missing_parameter(cls) -> ApiError:
        return cls(400, 400, "Missing request parameter error. Check the required parameters!")

    @classmethod
    def create_error(cls, side: str, message: str) -> ApiError:
        return cls(400, f"create_{_side(side)}_error", message)

    @classmethod
    def invalid_price(cls, side: str) -> ApiError:
        return cls(400, f"invalid_price_{_side(side)}", "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요.")

    @classmethod
    def under_min_total(cls, side: str, minimum: str, currency: str) -> ApiError:
        return cls(400, f"under_min_total_{_side(side)}", f"최소주문금액 이상으로 주문해주세요. ({minimum} {currency})")

    @classmethod
    def insufficient_funds(cls, side: str, currency: str) -> ApiError:
        return cls(400, f"insufficient_funds_{_side(side)}", f"주문가능한 금액({currency})이 부족합니다.")

    @classmethod
    def duplicate_identifier(cls) -> ApiError:
        # UNCONFIRMED: the docs say a used identifier is rejected, but not with which name.
        return cls(400, "duplicate_identifier", "이미 사용된 identifier 입니다. identifier는 재사용할 수 없습니다.")

    @classmethod
    def market_offline(cls) -> ApiError:
        return cls(400, "market_offline", "주문 가능한 상태가 아닙니다.")

    # --- 404 ---------------------------------------------------------------------------------

    @classmethod
    def order_not_found(cls) -> ApiError:
        return cls(404, "order_not_found", "주문을 찾지 못했습니다.")

    @classmethod
    def not_found(cls, path: str) -> ApiError:
        return cls(404, 404, f"No route for {path}")

    # --- 429 / 418: rate limits (docs/upbit-api.md §3.3 "Over the limit") ----------------------

    @classmethod
    def too_many_requests(cls, group: str) -> ApiError:
        # Deliberate choice: a JSON body (pyupbit calls resp.json() first); the message keeps the
        # text pyupbit matches, "Too many API requests." The real 429 body may be plain text.
        return cls(429, "too_many_requests", f"Too many API requests. (group={group})")

    @classmethod
    def blocked(cls, seconds: float) -> ApiError:
        # UNCONFIRMED: the exact 418 body; the docs only say it carries the block duration.
        return cls(418, "too_many_requests", f"Too many API requests. Blocked for {seconds:g} seconds.")


def _side(side: str) -> str:
    return "ask" if side == "ask" else "bid"
