"""The X emulator's reads: ``GET /2/users/me`` and the user's timeline ``GET /2/users/:id/tweets``
(a mixin of ``XEmulator``; state lives there: ``tweets``, ``lock``).

Paging as on X: ``max_results`` 5-100, ``meta.next_token`` -> ``pagination_token``, ``start_time`` /
``end_time`` (RFC 3339), ``since_id`` / ``until_id``, and ``tweet.fields`` choosing the extra fields.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from ._x_wire import USER, invalid, unauthorized
from .server import JSON, Request, Response, route


def _parse_time(value: str) -> float:
    """An RFC 3339 time (``2026-12-01T10:00:00Z``, optional fraction or offset) -> epoch seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class XReadsMixin:
    tweets: dict[str, JSON]
    lock: threading.RLock

    def _user(self, req: Request) -> str | None:  # XEmulator's (OAuth 1.0a or 2.0)
        raise NotImplementedError

    @route("GET", r"/2/users/me")
    def me(self, req: Request) -> Response:
        with self.lock:
            user = self._user(req)
        return Response(200, {"data": USER}) if user else unauthorized()

    @route("GET", r"/2/users/(?P<id>[^/]+)/tweets")
    def timeline(self, req: Request) -> Response:
        """The user's posts, newest first: ``max_results`` 5-100, ``pagination_token`` (``meta.next_token``),
        ``start_time``/``end_time`` (ISO 8601), ``since_id``/``until_id``, ``tweet.fields``."""
        with self.lock:
            user = self._user(req)
        if user is None:
            return unauthorized()
        raw = req.query.get("max_results", "10")
        if not raw.isdigit() or not 5 <= int(raw) <= 100:
            return invalid(f"The `max_results` query parameter value [{raw}] is not between 5 and 100",
                           parameters={"max_results": [raw]})
        uid = req.params["id"]
        if uid != USER["id"]:
            return Response(200, {"errors": [{"value": uid, "detail": f"Could not find user with id: [{uid}].",
                                              "title": "Not Found Error", "resource_type": "user", "parameter": "id",
                                              "resource_id": uid,
                                              "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
        bounds = {}
        for name in ("start_time", "end_time"):
            if name in req.query:
                try:
                    bounds[name] = _parse_time(req.query[name])
                except ValueError:
                    return invalid(f"Invalid '{name}':'{req.query[name]}'. '{name}' must be a valid RFC3339 "
                                   "date-time", parameters={name: [req.query[name]]})
        token = req.query.get("pagination_token")
        if token is not None and not token.startswith("pt-"):
            return invalid("The `pagination_token` query parameter value is not valid",
                           parameters={"pagination_token": [token]})
        fields = set(req.query.get("tweet.fields", "").split(","))
        with self.lock:
            mine = sorted((t for t in self.tweets.values() if t["author_id"] == uid
                           and t["created_at"] >= bounds.get("start_time", 0)
                           and t["created_at"] <= bounds.get("end_time", float("inf"))
                           and int(t["id"]) > int(req.query.get("since_id") or 0)
                           and int(t["id"]) < int(req.query.get("until_id") or 10**30)),
                          key=lambda t: int(t["id"]), reverse=True)
        if token is not None:  # the token names the newest id of the page it asks for
            mine = [t for t in mine if int(t["id"]) <= int(token[3:])]
        page, rest = mine[: int(raw)], mine[int(raw):]
        data = []
        for t in page:
            item = {"id": t["id"], "text": t["text"], "edit_history_tweet_ids": t["edit_history_tweet_ids"]}
            if "entities" in fields and t["entities"]:
                item["entities"] = t["entities"]
            if "referenced_tweets" in fields and t["in_reply_to_tweet_id"]:
                item["referenced_tweets"] = [{"type": "replied_to", "id": t["in_reply_to_tweet_id"]}]
            if "created_at" in fields:
                item["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t["created_at"])) + \
                    f".{int(t['created_at'] * 1000) % 1000:03d}Z"
            data.append(item)
        if not data:
            return Response(200, {"meta": {"result_count": 0}})
        meta = {"result_count": len(data), "newest_id": data[0]["id"], "oldest_id": data[-1]["id"]}
        if rest:
            meta["next_token"] = f"pt-{rest[0]['id']}"
        return Response(200, {"data": data, "meta": meta})
