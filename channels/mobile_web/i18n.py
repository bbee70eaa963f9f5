"""The citizens' pages in zh-CN and en. ``?lang=`` picks one; the city's locale is the default."""

from __future__ import annotations

LOCALES = ("zh-CN", "en")

# key → (zh-CN, en)
_WORDS: dict[str, tuple[str, str]] = {
    "site": ("江城12345", "Jiangcheng 311"),
    "other_lang": ("English", "中文"),
    "home_title": ("江城12345 市民服务", "Jiangcheng 311 for residents"),
    "home_intro": (
        "反映问题、提出建议、查询办理进度。无需注册，手机号码通过短信验证码确认。",
        "Report a problem, make a suggestion, follow up on a request. No account needed: "
        "we confirm your phone number with a text.",
    ),
    "report": ("我要反映问题", "Report a problem"),
    "track": ("查询办理进度", "Track a request"),
    "mailboxes": ("领导信箱", "Leaders' mailboxes"),
    "write": ("写信", "Write"),
    "emergency": (
        "紧急情况请直接拨打 110（报警）、119（火警）、120（急救）。",
        "In an emergency call 110 (police), 119 (fire) or 120 (ambulance).",
    ),
    "home_link": ("返回首页", "Home"),
    # the service picker
    "pick_title": ("选择问题类型", "What is it about?"),
    "search": ("搜索问题类型", "Search the topics"),
    "search_button": ("搜索", "Search"),
    "search_hint": ("例如：路灯、噪音、欠薪", "For example: street light, noise, wages"),
    "show_all": ("显示全部", "Show all"),
    "no_match": (
        "没有找到相关的问题类型，请换个词，或选择“综合 › 其他”。",
        "Nothing matched. Try another word, or choose General › Other.",
    ),
    # the details step
    "step": ("第 {n} 步，共 3 步", "Step {n} of 3"),
    "guidance": ("办理须知", "Before you start"),
    "forms": ("表格下载", "Forms to download"),
    "details": ("填写内容", "Your report"),
    "required": ("（必填）", "(required)"),
    "optional": ("（选填）", "(optional)"),
    "description": ("问题描述", "Describe the problem"),
    "description_hint": (
        "发生了什么、从什么时候开始、您希望怎样解决。",
        "What happened, since when, and what you would like done.",
    ),
    "letter": ("来信内容", "Your letter"),
    "letter_hint": (
        "请写明您的意见、建议或希望反映的情况。",
        "Your ideas, suggestions, or what you would like the leader to know.",
    ),
    "photos": ("照片（最多 3 张）", "Photos (up to 3)"),
    "photos_hint": (
        "JPG、PNG 或 WebP，每张不超过 8 MB。照片中的拍摄地点等信息会被删除。",
        "JPG, PNG or WebP, 8 MB each at most. Location and other details inside the "
        "photo are removed.",
    ),
    "photo_n": ("照片 {n}", "Photo {n}"),
    "photo_kept": ("保留已上传的照片 {n}（{w}×{h}）", "Keep uploaded photo {n} ({w}×{h})"),
    "location": ("地点", "Where"),
    "address": ("详细地址或附近地标", "Address or a nearby landmark"),
    "district": ("所在区", "District"),
    "district_unknown": ("不确定", "Not sure"),
    "use_location": ("使用我的位置", "Use my location"),
    "location_ok": ("已获取您的位置。", "Your location was added."),
    "location_failed": (
        "无法获取位置，请填写地址。",
        "Could not get your location; please type the address.",
    ),
    "next": ("下一步", "Next"),
    "choose": ("请选择", "Choose one"),
    "datetime_hint": ("格式：2026-11-20 14:30", "Format: 2026-11-20 14:30"),
    # the contact step
    "contact_title": ("确认手机号码", "Confirm your phone number"),
    "summary": ("您要反映", "You are reporting"),
    "edit": ("修改内容", "Change the report"),
    "phone": ("手机号码", "Mobile number"),
    "phone_hint": (
        "我们会发送 6 位验证码；办理进度和答复也通过短信告知您。",
        "We text you a 6-digit code, and later the progress and the answer.",
    ),
    "anonymous": (
        "对承办部门保密我的手机号码（匿名反映）",
        "Keep my number from the department handling it (anonymous)",
    ),
    "send_code": ("发送验证码", "Text me a code"),
    # the verify step
    "verify_title": ("输入验证码", "Enter the code"),
    "code_sent": (
        "验证码已发送至尾号 {last4} 的手机，10 分钟内有效。",
        "We texted a code to the phone ending in {last4}. It is valid for 10 minutes.",
    ),
    "code": ("6 位验证码", "6-digit code"),
    "submit": ("提交", "Submit"),
    "resend": ("重新发送验证码", "Send a new code"),
    "change_phone": ("更换手机号码", "Use another number"),
    "code_resent": ("新的验证码已发送。", "A new code is on its way."),
    # done
    "done_title": ("提交成功", "Sent"),
    "done_text": (
        "我们已受理您的诉求，编号也已通过短信发给您。请保存编号，用它和手机尾号查询进度。",
        "We have your request; its reference is also on its way by text. Keep it: with "
        "the last 4 digits of your phone it lets you follow the request.",
    ),
    "your_reference": ("您的编号", "Your reference"),
    "track_it": ("查询进度", "Track it"),
    "report_more": ("再反映一个问题", "Report something else"),
    # tracking
    "track_title": ("查询办理进度", "Track a request"),
    "reference": ("编号（14 位数字）", "Reference (14 digits)"),
    "last4": ("手机号码后 4 位", "Last 4 digits of your phone"),
    "look_up": ("查询", "Look up"),
    "status": ("当前状态", "Status"),
    "service": ("问题类型", "Topic"),
    "received_at": ("受理时间", "Received"),
    "expected_by": ("预计办结", "Expected by"),
    "steps": ("办理过程", "Progress"),
    "reply": ("部门答复", "The department's answer"),
    "files": ("答复附件", "Files with the answer"),
    "merged_reply": (
        "此诉求与同一问题的其他反映合并办理，答复如下：",
        "This request was handled together with other reports of the same problem:",
    ),
    "rate_title": ("您对办理结果满意吗？", "Are you satisfied with the outcome?"),
    "rate_window": ("请在 {until} 前评价。", "Please answer by {until}."),
    "rating": ("您的评价", "Your rating"),
    "sat_1": ("满意", "Satisfied"),
    "sat_2": ("基本满意", "Fairly satisfied"),
    "sat_3": ("不满意", "Not satisfied"),
    "solved": ("问题解决了吗？", "Was the problem solved?"),
    "solved_yes": ("已解决", "Yes"),
    "solved_no": ("未解决", "No"),
    "rate": ("提交评价", "Send my rating"),
    "reopen_title": ("问题没有解决？", "Not solved?"),
    "reopen_reason": ("请说明还有什么问题", "Tell us what is still wrong"),
    "reopen": ("要求重新办理", "Ask for it to be handled again"),
    "rated": ("感谢您的评价，诉求已办结归档。", "Thank you for rating. The request is now closed."),
    "reopened": (
        "已为您重新办理，诉求已退回承办部门。",
        "It is being handled again: the request went back to the department.",
    ),
    "your_rating": ("您的评价：{label}", "Your rating: {label}"),
    "track_another": ("查询其他编号", "Look up another reference"),
    # timeline steps
    "ev_created": ("已受理", "Received"),
    "ev_dispatched": ("已派至 {dept}", "Sent to {dept}"),
    "ev_accepted": ("{dept} 已签收，正在办理", "{dept} is handling it"),
    "ev_returned": ("重新派单中", "Being passed to the right department"),
    "ev_extension_granted": ("办理期限延长至 {until}", "The deadline moved to {until}"),
    "ev_resolved": ("{dept} 已办结并答复", "{dept} answered"),
    "ev_reopened": ("重新办理", "Being handled again"),
    "ev_reopened_citizen": ("按您的要求重新办理", "Handled again at your request"),
    "ev_closed": ("已办结归档", "Closed"),
    "ev_not_accepted": ("不予受理", "Not taken up"),
    "ev_merged": (
        "与同一问题的其他反映合并办理",
        "Handled together with reports of the same problem",
    ),
    "ev_note": ("办理进展", "Progress note"),
    "ev_satisfaction": ("回访评价：{label}", "Follow-up rating: {label}"),
    "reason": ("原因：{reason}", "Reason: {reason}"),
    "the_department": ("承办部门", "The department"),
    # problems
    "err_csrf": (
        "页面已过期，请重新提交。如果一直出现，请允许浏览器保存 Cookie。",
        "The page expired; please send it again. If this keeps happening, allow cookies.",
    ),
    "err_expired": (
        "填写内容已过期，请重新开始。",
        "Your report expired before it was sent; please start again.",
    ),
    "err_required": ("请填写此项。", "Please fill this in."),
    "err_choose": ("请从列表中选择。", "Please choose from the list."),
    "err_number": ("请输入数字。", "Please enter a number."),
    "err_datetime": (
        "请按格式填写日期和时间。",
        "Please give a date and time in the format shown.",
    ),
    "err_too_long": ("内容过长，最多 {n} 个字。", "Too long: {n} characters at most."),
    "err_invalid": ("请检查此项。", "Please check this."),
    "err_location": (
        "位置信息无效，请填写地址。",
        "The location is not valid; please type the address.",
    ),
    "err_photo_type": (
        "照片 {n} 不是可识别的图片，请选择 JPG、PNG 或 WebP 格式的照片。",
        "Photo {n} is not a picture we can read. Please choose a JPG, PNG or WebP photo.",
    ),
    "err_photo_size": (
        "照片 {n} 超过 8 MB，请选择较小的照片。",
        "Photo {n} is larger than 8 MB. Please choose a smaller one.",
    ),
    "err_photo_many": ("最多上传 3 张照片。", "Up to 3 photos, please."),
    "err_upload_size": (
        "上传的内容过大（每张照片不超过 8 MB，最多 3 张），请重新选择照片。",
        "The upload is too large (3 photos of 8 MB at most). Please choose the photos again.",
    ),
    "err_phone": ("请输入有效的手机号码。", "Please enter a valid mobile number."),
    "err_code_format": ("请输入短信中的 6 位数字。", "Please type the 6 digits from the text."),
    "err_code_wrong": (
        "验证码不正确，还可以再试 {n} 次。",
        "That code is not right; {n} more tries.",
    ),
    "err_code_dead": (
        "验证码已失效（过期或错误次数过多），请重新获取。",
        "The code no longer works (expired or too many tries). Please ask for a new one.",
    ),
    "err_code_wait": (
        "验证码刚刚发出，请 {n} 秒后再重新获取。",
        "A code was just sent; you can ask for another in {n} seconds.",
    ),
    "err_code_limit": (
        "验证码发送过于频繁，请稍后再试。",
        "Too many codes were sent; please try again later.",
    ),
    "err_reference": (
        "编号应为 14 位数字，请核对短信中的编号。",
        "A reference has 14 digits; please check the one in your text.",
    ),
    "err_last4": ("请输入手机号码的后 4 位数字。", "Please type the last 4 digits of your phone."),
    "err_not_found": (
        "没有找到匹配的诉求：请核对编号和手机尾号。",
        "No request matches: please check the reference and the last 4 digits.",
    ),
    "err_provisional": (
        "自助终端的临时编号正在上传，请稍后再查，或使用短信中的 14 位编号。",
        "That kiosk reference is still on its way; try again later or use the 14-digit "
        "reference from your text.",
    ),
    "err_locked": (
        "尝试次数过多，请 1 小时后再试。如需帮助请拨打 12345。",
        "Too many tries; please try again in an hour, or call 12345 for help.",
    ),
    "err_busy": (
        "查询过于频繁，请稍后再试。",
        "Too many look-ups; please wait a few minutes.",
    ),
    "err_link": (
        "查询已过期，请重新输入编号和手机尾号。",
        "This page expired; please enter the reference and the digits again.",
    ),
    "err_rate_choose": ("请选择一项评价。", "Please choose a rating."),
    "err_not_now": (
        "此诉求现在不能评价或重新办理（已评价、已重新办理过或已超过期限）。",
        "This request cannot be rated or reopened now (already done once, or too late).",
    ),
    "err_changed": (
        "诉求刚刚有了变化，请再看一遍。",
        "The request just changed; please look again.",
    ),
    "err_form": ("请修改标出的内容后再提交。", "Please correct what is marked and send again."),
}

_STATUS = {
    "zh-CN": {
        "received": "已受理",
        "dispatched": "已派单",
        "accepted": "办理中",
        "returned": "重新派单中",
        "resolved": "已办结，待您评价",
        "reopened": "重新办理中",
        "closed": "已办结归档",
        "merged": "已合并办理",
    },
    "en": {
        "received": "Received",
        "dispatched": "Sent to the department",
        "accepted": "Being handled",
        "returned": "Being re-assigned",
        "resolved": "Answered, waiting for your rating",
        "reopened": "Being handled again",
        "closed": "Closed",
        "merged": "Handled with another report",
    },
}


def pick(lang: str | None, default: str) -> str:
    return lang if lang in LOCALES else default


def words(locale: str) -> dict[str, str]:
    i = 0 if locale == "zh-CN" else 1
    return {key: pair[i] for key, pair in _WORDS.items()}


def status_name(locale: str, status: str) -> str:
    return _STATUS[locale].get(status, status)


def other(locale: str) -> str:
    return "en" if locale == "zh-CN" else "zh-CN"
