"""The WeChat emulator's 群发 (mass send), draft lookup and preview-to-phone endpoints (a mixin of
``WeChatEmulator``; state lives there: ``drafts``, ``mass``, ``clientmsgids``, ``previews``, ``config``).

Read from the fact sheet (§1.3, §1.5, §1.7), not from our client: ``draft/get`` gives each article a
temporary preview ``url``; ``message/mass/sendall`` consumes the draft (a mass-sent draft leaves the
draft box), de-duplicates by ``clientmsgid`` (45065 with the earlier ``msg_id``; > 64 bytes → 45067) and
counts successful sends per Beijing day against ``mass_quota`` (45028); ``message/mass/get`` answers
SENDING for ``mass_polls`` polls, then ``mass_status``; ``message/mass/preview`` leaves the draft in
place and, with a non-empty ``followers`` list, refuses anyone else (43004).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from ._wx_cgi import WxError, cgi, check_flag, draft_named, job_named, rid, thumb_url
from .server import JSON, Request


class MassSendMixin:
    drafts: dict[str, JSON]
    materials: dict[str, JSON]
    mass: dict[str, JSON]
    clientmsgids: dict[str, str]
    previews: list[JSON]
    config: JSON
    seq: Any
    url: str
    record_post: Any  # the Emulator's (the mixin is mixed into WeChatEmulator)


    @cgi("POST", r"/cgi-bin/draft/get")
    def draft_get(self, req: Request, body: JSON) -> JSON:
        media_id = str(body.get("media_id"))
        draft = draft_named(self.drafts, media_id, consume=False)
        items = []
        for i, a in enumerate(draft["articles"], 1):
            preview = f"{self.url}/s/draft?media_id={media_id}&idx={i}&tmp={secrets.token_hex(6)}"
            items.append({**a, "url": preview, "thumb_url": thumb_url(self.materials, a.get("thumb_media_id"))})
        return {"news_item": items}

    def _mpnews_draft(self, body: JSON, *, consume: bool) -> tuple[str, JSON]:
        if body.get("msgtype") != "mpnews":
            raise WxError(40097, "only mpnews is emulated")
        mpnews = body.get("mpnews")
        media_id = str(mpnews.get("media_id")) if isinstance(mpnews, dict) else ""
        return media_id, draft_named(self.drafts, media_id, consume=consume)

    @cgi("POST", r"/cgi-bin/message/mass/sendall")
    def mass_sendall(self, req: Request, body: JSON) -> JSON:
        flt = body.get("filter")
        if not isinstance(flt, dict) or not isinstance(flt.get("is_to_all"), bool):
            raise WxError(40097, "filter.is_to_all must be true or false")
        if not flt["is_to_all"] and not isinstance(flt.get("tag_id"), int):
            raise WxError(40097, "filter.tag_id must be an integer when is_to_all is false")
        check_flag(body, "send_ignore_reprint")
        cid = body.get("clientmsgid")
        if cid is not None and (not isinstance(cid, str) or len(cid.encode()) > 64):
            raise WxError(45067)
        if self.config["clientmsgid_first"] and cid in self.clientmsgids:
            return self._dup_clientmsgid(cid)
        self._mpnews_draft(body, consume=False)
        if not self.config["clientmsgid_first"] and cid in self.clientmsgids:
            return self._dup_clientmsgid(cid)
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))  # Beijing day
        sent_today = sum(1 for m in self.mass.values() if m["day"] == day)
        if sent_today >= int(self.config["mass_quota"]):
            raise WxError(45028)
        media_id, draft = self._mpnews_draft(body, consume=True)  # a mass-sent draft leaves the draft box
        n = next(self.seq)
        msg_id = str(1000000000 + n)
        self.mass[msg_id] = {"day": day, "polls_left": int(self.config["mass_polls"]),
                             "final": str(self.config["mass_status"]), "status": "SENDING"}
        if cid is not None:
            self.clientmsgids[cid] = msg_id
        self.record_post({"id": msg_id, "mode": "mass", "msg_id": msg_id, "clientmsgid": cid, "filter": flt,
                          "send_ignore_reprint": body.get("send_ignore_reprint", 0), **draft["articles"][0],
                          "articles": draft["articles"], "raw": draft["raw"]})
        return {"errcode": 0, "errmsg": "send job submission success", "msg_id": int(msg_id),
                "msg_data_id": 2650000000 + n}

    def _dup_clientmsgid(self, cid: str) -> JSON:
        return {"errcode": 45065, "errmsg": f"clientmsgid exist rid: {rid()}", "msg_id": int(self.clientmsgids[cid])}

    @cgi("POST", r"/cgi-bin/message/mass/get")
    def mass_get(self, req: Request, body: JSON) -> JSON:
        msg_id = str(body.get("msg_id"))
        job = job_named(self.mass, msg_id, "msg_id")
        if job["status"] == "SENDING":
            if job["polls_left"] > 0:
                job["polls_left"] -= 1
            else:
                job["status"] = job["final"]
        return {"msg_id": int(msg_id), "msg_status": job["status"]}

    @cgi("POST", r"/cgi-bin/message/mass/preview")
    def mass_preview(self, req: Request, body: JSON) -> JSON:
        towxname, touser = body.get("towxname"), body.get("touser")
        who = towxname or touser
        if not isinstance(who, str) or not who.strip():
            raise WxError(40003 if touser is not None else 40097, "towxname or touser is required")
        followers = self.config["followers"]
        if followers and who not in followers:
            raise WxError(43004)
        media_id, draft = self._mpnews_draft(body, consume=False)  # a preview leaves the draft where it is
        n = next(self.seq)
        self.previews.append({"msg_id": n, "towxname": towxname, "touser": touser, "media_id": media_id,
                              "articles": draft["articles"], "at": time.time()})
        return {"errcode": 0, "errmsg": "preview success", "msg_id": n}
