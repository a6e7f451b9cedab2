"""Roster upload (preview, rejected rows, then confirm) and roster download as XLSX.

The upload is parked in ``{bot.media_dir}/roster-uploads`` under a name only the uploading session
can compute (an HMAC of its session id and a random id), so confirming applies exactly the file that
was previewed; the rows are re-read and re-compared at confirm time, never trusted from the form.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import secrets
import time
from pathlib import Path

from aiohttp import BodyPartReader, web
from sqlalchemy import select

from bot.channels.registry import roster_channels
from bot.console import csrf
from bot.console.auth import guard, viewer_of
from bot.console.render import redirect, render
from bot.console.viewer import ADMIN, STAFF
from bot.keys import clock_key, hub_key, secret_key, sessions_key, settings_key
from handlers.roster import RosterFileError, parse_roster_bytes
from handlers.roster_import import ImportReport, import_roster
from handlers.sheets import append_row
from storage.models import Craftsman, Identity, Person

TYPES = (".csv", ".xlsx")
KEEP_S = 3600  # an unconfirmed upload is dropped after an hour
HEADER = ("编号", "姓名", "小组", "技能专长", "地区", "渠道", "账号", "简介", "手机")


def _dir(request: web.Request) -> Path:
    path = Path(request.app[settings_key].bot.media_dir) / "roster-uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _parked(request: web.Request, upload_id: str, suffix: str) -> Path:
    if suffix not in TYPES or not upload_id.isalnum():
        raise web.HTTPBadRequest(text="上传编号无效。")
    key = f"{viewer_of(request).session_id}|{upload_id}".encode()
    return _dir(request) / (hmac.new(request.app[secret_key], key, hashlib.sha256).hexdigest() + suffix)


async def roster_page(request: web.Request) -> web.Response:
    """花名册: the upload form and the download link."""
    return render(request, "roster.html", report=None, upload_id="", suffix="", filename="", error="",
                  limit_mb=request.app[settings_key].console.upload_max_bytes / 1024 / 1024)


async def _read_upload(request: web.Request, limit: int) -> tuple[str, bytes]:
    """(filename, bytes) of the multipart upload; CSRF first, size and type checked while reading."""
    if request.content_length is not None and request.content_length > limit + 65536:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length,
                                            text=f"文件太大：最大 {limit // 1024} KB。")
    reader = await request.multipart()
    part = await reader.next()
    # The token is the form's first field, so a forged post is refused before any file byte is read.
    if not isinstance(part, BodyPartReader) or part.name != "_csrf" or not csrf.valid(request, await part.text()):
        raise web.HTTPForbidden(text="表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。")
    part = await reader.next()
    if not isinstance(part, BodyPartReader) or part.name != "file" or not part.filename:
        raise web.HTTPBadRequest(text="请选择要上传的花名册文件。")
    filename = Path(part.filename).name
    if not filename.lower().endswith(TYPES):
        raise web.HTTPUnsupportedMediaType(text="只支持 CSV 或 XLSX 格式的花名册。")
    data = bytearray()
    while chunk := await part.read_chunk(65536):
        data += chunk
        if len(data) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(data),
                                                text=f"文件太大：最大 {limit // 1024} KB。")
    if filename.lower().endswith(".xlsx") and not data.startswith(b"PK"):
        raise web.HTTPUnsupportedMediaType(text="文件内容不是 XLSX 表格。")
    return filename, bytes(data)


async def _preview(request: web.Request, data: bytes, filename: str, *, apply: bool) -> ImportReport:
    parsed = await asyncio.to_thread(parse_roster_bytes, data, filename, channels=roster_channels())  # openpyxl: CPU
    now = request.app[clock_key].now()
    if apply:
        async with request.app[sessions_key].begin() as db:
            return await import_roster(db, parsed, now=now, apply=True)
    async with request.app[sessions_key]() as db:  # never committed: a preview writes nothing
        return await import_roster(db, parsed, now=now, apply=False)


async def roster_upload(request: web.Request) -> web.Response:
    """Show what the file would change and which rows are refused, before anything is written."""
    limit = request.app[settings_key].console.upload_max_bytes
    filename, data = await _read_upload(request, limit)
    try:
        report = await _preview(request, data, filename, apply=False)
    except RosterFileError as err:
        return render(request, "roster.html", status=422, report=None, upload_id="", suffix="", filename=filename,
                      error=str(err), limit_mb=limit / 1024 / 1024)
    for old in _dir(request).iterdir():  # housekeeping: forgotten previews
        if old.stat().st_mtime < time.time() - KEEP_S:
            old.unlink(missing_ok=True)
    upload_id, suffix = secrets.token_hex(12), Path(filename).suffix.lower()
    _parked(request, upload_id, suffix).write_bytes(data)
    return render(request, "roster.html", report=report, upload_id=upload_id, suffix=suffix, filename=filename,
                  error="", limit_mb=limit / 1024 / 1024)


async def roster_confirm(request: web.Request) -> web.StreamResponse:
    """Apply the previewed file (re-read and re-compared now)."""
    form = await request.post()
    filename = Path(str(form.get("filename", "roster.csv"))).name
    path = _parked(request, str(form.get("upload_id", "")), str(form.get("suffix", "")))
    if not path.is_file():
        raise redirect("/console/roster", "上传的文件已过期，请重新上传。", error=True)
    try:
        report = await _preview(request, path.read_bytes(), filename, apply=True)
    except RosterFileError as err:
        raise redirect("/console/roster", str(err), error=True) from None
    finally:
        path.unlink(missing_ok=True)
    request.app[hub_key].changed()
    raise redirect("/console/roster", f"花名册已导入：{report.summary()}", error=bool(report.errors))


async def roster_download(request: web.Request) -> web.Response:
    """The current roster as XLSX, in the columns the importer reads (a round trip changes nothing)."""
    import openpyxl

    async with request.app[sessions_key]() as db:
        rows = (await db.execute(select(Person, Craftsman).join(Craftsman, Craftsman.person_id == Person.id)
                                 .order_by(Craftsman.code))).all()
        identities: dict[int, Identity] = {}
        for row in (await db.scalars(select(Identity).order_by(Identity.id.desc()))).all():
            identities[row.person_id] = row  # the oldest identity wins: the one the roster gave

    def workbook() -> bytes:  # CPU only, on rows already loaded: runs on a thread
        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = "花名册"
        append_row(ws, HEADER)
        for person, c in rows:
            ident = identities.get(person.id)
            append_row(ws, [c.code, person.name, c.trade_group, "、".join(map(str, c.skills)), c.region,
                       ident.channel if ident else "", ident.channel_user_id if ident else "", c.bio,
                       person.phone or ""])
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()

    body = await asyncio.to_thread(workbook)
    day = request.app[clock_key].now().astimezone(request.app[settings_key].tz)
    return web.Response(body=body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f"attachment; filename=roster-{day:%Y%m%d}.xlsx"})


def routes() -> list[web.RouteDef]:
    admin, office = guard(ADMIN), guard(ADMIN, STAFF)
    return [
        web.get("/console/roster", admin(roster_page)),
        web.post("/console/roster/upload", guard(ADMIN, csrf_in_body=False)(roster_upload)),
        web.post("/console/roster/confirm", admin(roster_confirm)),
        web.get("/console/roster.xlsx", office(roster_download)),
    ]
