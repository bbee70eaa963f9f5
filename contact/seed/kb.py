"""Knowledge-base articles of the demo city: what agents read out and the IVR plays.

Data only. ``service`` is a service code (or None). National numbers quoted (110,
119, 122, 12333, 12315, 95598) are the real ones; everything about Jiangcheng is
fictional.
"""

from __future__ import annotations

from typing import Any

KB_ARTICLES: list[dict[str, Any]] = [
    {
        "service": "social-insurance",
        "title_zh": "如何查询个人社保缴费记录",
        "title_en": "How to check your social insurance contributions",
        "body_zh": (
            "可通过以下方式查询：1. 登录“江城人社”App或微信公众号，实名认证后进入“个人权益记录”；"
            "2. 持社保卡到各区政务服务中心或银行网点的人社自助终端查询、打印；"
            "3. 拨打12333人社服务热线，按提示输入身份证号和查询密码。"
            "单位当月申报的缴费一般在次月15日前可查到。如发现漏缴、断缴，请先联系单位经办人核实，"
            "单位拒不补缴的可向人社局劳动保障监察机构投诉。"
        ),
        "body_en": (
            "You can check: 1. in the Jiangcheng HR & Social Security app or WeChat account, "
            "after identity verification, under 'Personal records'; 2. with your social "
            "security card at a self-service terminal in any district service centre or "
            "bank branch; 3. by calling 12333 and entering your ID number and query PIN. "
            "Contributions declared by your employer normally show by the 15th of the next "
            "month. If months are missing, ask your employer's HR first; if they refuse to "
            "pay, complain to the labour inspectorate of the HR & Social Security Bureau."
        ),
        "keywords": ["社保", "缴费记录", "查询", "12333", "social insurance", "contributions"],
    },
    {
        "service": "social-insurance",
        "title_zh": "退休人员养老金待遇资格认证",
        "title_en": "Annual eligibility check for pensioners",
        "body_zh": (
            "领取养老金的退休人员每年需进行一次待遇资格认证，认证周期为12个月。"
            "可在“江城人社”App“刷脸认证”中自助完成，也可由子女用本人手机帮助完成；"
            "行动不便的老人可联系所在社区，由工作人员上门认证。"
            "超过认证周期未认证的，养老金将暂停发放，补办认证后恢复并补发。"
        ),
        "body_en": (
            "Pensioners confirm their eligibility once every 12 months. Use face "
            "recognition in the Jiangcheng HR & Social Security app (a family member can "
            "help on their own phone); if you cannot go out, your community office will "
            "send someone to your home. If the check is overdue, payments pause and are "
            "paid back in full once it is done."
        ),
        "keywords": ["养老金", "资格认证", "刷脸", "退休", "pension", "eligibility"],
    },
    {
        "service": "social-insurance",
        "title_zh": "失业保险金申领条件",
        "title_en": "Who can claim unemployment benefit",
        "body_zh": (
            "同时符合以下条件可申领失业保险金：失业前用人单位和本人已缴纳失业保险满1年；"
            "非因本人意愿中断就业（如合同到期不续签、单位裁员）；已办理失业登记并有求职要求。"
            "可在“江城人社”App线上申领，材料为身份证和解除劳动合同证明。"
            "领取期限按累计缴费时间计算，最长24个月，领取期间同时享受职工医保待遇。"
        ),
        "body_en": (
            "You can claim if: you and your employer paid unemployment insurance for at "
            "least a year; you lost the job not by your own choice (contract not renewed, "
            "redundancy); and you have registered as unemployed and are looking for work. "
            "Apply in the Jiangcheng HR & Social Security app with your ID and the proof "
            "that the contract ended. Benefit lasts up to 24 months depending on how long "
            "you paid in, and medical insurance continues meanwhile."
        ),
        "keywords": ["失业金", "失业保险", "申领", "unemployment benefit"],
    },
    {
        "service": "water-outage",
        "title_zh": "停水了怎么办？计划停水公告在哪里看",
        "title_en": "No water? Where to find planned outage notices",
        "body_zh": (
            "计划停水（管网施工、设备检修）会提前24至48小时在“江城水务”微信公众号、水务局网站"
            "和小区公告栏发布，写明停水时间和范围。如果没有看到公告而突然停水，"
            "请先询问邻居是否同样停水：仅本户停水多为户内管道或水表阀门问题，可联系物业；"
            "整栋楼或片区停水、水压低，请拨打12345报修，水务部门2小时内到场处置。"
        ),
        "body_en": (
            "Planned outages (mains work, maintenance) are announced 24–48 hours ahead on "
            "the Jiangcheng Water WeChat account, the Water Authority website and estate "
            "notice boards, with times and streets. If the water stops without notice, ask "
            "your neighbours: if only your home is affected it is usually your own pipes or "
            "meter valve (call your property manager); if the building or area is affected "
            "or pressure is low, call 12345 — the water service is on site within 2 hours."
        ),
        "keywords": ["停水", "停水通知", "水压", "no water", "outage notice"],
    },
    {
        "service": "power-outage",
        "title_zh": "家里停电了怎么办",
        "title_en": "What to do in a power cut",
        "body_zh": (
            "先看邻居家是否有电：如果只有自己家停电，请检查家中空气开关是否跳闸、电费是否欠费"
            "（可在“网上国网”App查询和缴费）；如果整栋楼或片区停电，可能是计划检修或线路故障，"
            "计划停电会提前7天在“网上国网”App和供电公司公告中发布。故障报修请拨打95598或12345。"
            "发现电线断落请远离至少8米，不要触碰。"
        ),
        "body_en": (
            "Check whether your neighbours have power. If only your home is off, check "
            "your circuit breaker and whether the bill is paid (State Grid app). If the "
            "building or area is off, it may be planned maintenance (announced 7 days ahead "
            "in the State Grid app) or a fault: report it to 95598 or 12345. Keep at least "
            "8 metres away from fallen power lines and never touch them."
        ),
        "keywords": ["停电", "跳闸", "95598", "power cut", "blackout"],
    },
    {
        "service": "gas",
        "title_zh": "闻到燃气味怎么办",
        "title_en": "If you smell gas",
        "body_zh": (
            "1. 立即关闭燃气总阀；2. 打开门窗通风；3. 不要开关电灯、电器，不要使用明火和手机；"
            "4. 离开房间到室外安全处，再拨打燃气集团24小时抢修电话或119。"
            "燃气表故障、停气、气压低等非紧急问题可拨打12345，燃气公司2小时内联系处置。"
        ),
        "body_en": (
            "1. Turn off the gas at the main valve; 2. open doors and windows; 3. do not "
            "switch lights or appliances on or off, and do not use flames or your phone "
            "inside; 4. go outside, then call the gas company's 24-hour emergency line or "
            "119. For non-urgent problems (meter faults, no gas, low pressure) call 12345; "
            "the gas company will contact you within 2 hours."
        ),
        "keywords": ["燃气", "燃气泄漏", "燃气味", "gas leak", "smell of gas"],
    },
    {
        "service": "heating",
        "title_zh": "供暖期与室温标准",
        "title_en": "Heating season and room temperature standard",
        "body_zh": (
            "江城市集中供暖期为每年11月15日至次年3月15日。供暖期内卧室、起居室室温应不低于18℃。"
            "室温不达标的，可拨打12345或供热企业客服电话报修，供热企业应在2小时内上门测温。"
            "测温时门窗需关闭1小时以上，在房间中央距地面1.5米处测量。"
            "连续不达标的，可按规定申请退还部分供暖费。"
        ),
        "body_en": (
            "District heating runs from 15 November to 15 March. Bedrooms and living rooms "
            "must reach at least 18 °C. If not, call 12345 or the heating company; they "
            "must come to measure within 2 hours (doors and windows closed for an hour, "
            "measured in the middle of the room at 1.5 m). If it stays below standard you "
            "can claim back part of the heating fee."
        ),
        "keywords": ["供暖", "暖气", "室温", "18度", "heating", "radiator"],
    },
    {
        "service": "illegal-parking",
        "title_zh": "违章停车、占用消防通道如何举报",
        "title_en": "Reporting illegal parking and blocked fire lanes",
        "body_zh": (
            "车辆占用消防通道、堵塞出入口的，请提供车牌号和具体位置，公安交管部门会先电话联系车主挪车，"
            "无法联系的依法拖移。正在发生的交通事故请拨打122。"
            "小区内部道路停车由物业管理，请先联系物业；市政道路乱停车可通过12345或“江城交警”App随手拍举报。"
        ),
        "body_en": (
            "For a car blocking a fire lane or an entrance, give the plate number and exact "
            "place: traffic police first call the owner to move it and tow it if they "
            "cannot reach them. Report road accidents to 122. Parking inside an estate is "
            "the property manager's job; illegal parking on public roads can be reported "
            "via 12345 or with a photo in the Jiangcheng Traffic Police app."
        ),
        "keywords": ["违停", "消防通道", "挪车", "拖车", "illegal parking", "fire lane"],
    },
    {
        "service": "noise-construction",
        "title_zh": "夜间施工有哪些规定",
        "title_en": "Rules on construction work at night",
        "body_zh": (
            "城市建成区内，22:00至次日6:00禁止产生噪声污染的建筑施工作业。"
            "因混凝土连续浇筑等生产工艺确需夜间施工的，须取得住建部门的夜间施工证明，"
            "并在工地醒目位置公示，提前告知周边居民。举报时请说明工地名称或位置、施工时间，"
            "住建部门核实无证夜间施工的，将责令停止并依法处罚。"
        ),
        "body_en": (
            "In built-up areas, noisy building work is banned from 22:00 to 06:00. Work "
            "that cannot stop (such as continuous concrete pours) needs a night-work "
            "permit from the housing and construction bureau, displayed at the site with "
            "notice to residents. When reporting, give the site name or location and the "
            "times; work at night without a permit is stopped and fined."
        ),
        "keywords": ["夜间施工", "施工噪音", "夜间施工证明", "night work", "construction noise"],
    },
    {
        "service": "noise-neighbourhood",
        "title_zh": "装修、广场舞等生活噪声怎么处理",
        "title_en": "Home renovation, square dancing and other everyday noise",
        "body_zh": (
            "住宅室内装修应避开午间和夜间，《江城市住宅装修管理规定》允许的施工时间为工作日8:00—12:00、"
            "14:00—18:00，节假日原则上不得进行电钻、切割等高噪声作业。"
            "广场舞、商铺喇叭等噪声扰民，可拨打12345或110，公安部门将劝导并依法处理。"
            "邻里噪声纠纷也可申请社区人民调解。"
        ),
        "body_en": (
            "Home renovation in Jiangcheng is allowed on working days 8:00–12:00 and "
            "14:00–18:00; drilling and cutting are not allowed on public holidays. For "
            "square dancing or shop loudspeakers, call 12345 or 110: the police will talk "
            "to those responsible and act if needed. Neighbour disputes about noise can "
            "also go to free community mediation."
        ),
        "keywords": ["装修噪音", "广场舞", "噪音扰民", "renovation", "noise"],
    },
    {
        "service": "school-enrolment",
        "title_zh": "小学一年级入学报名时间与材料",
        "title_en": "Applying for a primary school place",
        "body_zh": (
            "每年5月中旬在“江城教育”平台网上报名，6月公布学区划片和录取结果。"
            "适龄儿童为当年8月31日前年满6周岁。需准备：儿童户口簿、父母身份证、"
            "房产证或不动产权证（租房的提供居住证和连续1年社保缴费证明）。"
            "随迁子女按“居住证+社保”积分入学，具体以各区教育局当年公布的招生方案为准。"
        ),
        "body_en": (
            "Apply online on the Jiangcheng Education platform in mid-May; catchment "
            "areas and results are published in June. Children must be 6 by 31 August. "
            "You need the child's household register, parents' ID cards, and the property "
            "certificate (tenants: residence permit and one year of social insurance "
            "contributions). Children of families from elsewhere are placed by points; "
            "each district's admissions plan for the year has the details."
        ),
        "keywords": ["入学", "报名", "一年级", "学区", "school place", "enrolment"],
    },
    {
        "service": "consumer",
        "title_zh": "预付卡商家关门跑路怎么办",
        "title_en": "A shop closed after selling you a prepaid card",
        "body_zh": (
            "请保存好预付卡、购卡收据、聊天记录和付款凭证，尽快通过12345或12315投诉，"
            "注明商家名称、地址和金额。市场监管部门将核实并组织调解；"
            "涉及人数多、金额大的，可能涉嫌诈骗，请同时向公安机关报案。"
            "单张预付卡超过5000元或商家不签书面合同的，属于违规发卡。"
        ),
        "body_en": (
            "Keep the card, receipts, messages and payment records, and complain to 12345 "
            "or 12315 with the shop's name, address and the amount. Market regulators "
            "check and mediate; if many people lost a lot of money it may be fraud, so also "
            "report it to the police. Cards over 5,000 yuan, or sold without a written "
            "contract, break the rules."
        ),
        "keywords": ["预付卡", "跑路", "退费", "12315", "prepaid card", "refund"],
    },
    {
        "service": "wage-arrears",
        "title_zh": "被拖欠工资怎么办",
        "title_en": "If your wages are not paid",
        "body_zh": (
            "1. 收集证据：劳动合同、考勤记录、工资条、工作群聊天记录、工友证言；"
            "2. 向人社局劳动保障监察机构投诉（可通过12345或12333），"
            "监察机构一般在受理后15个工作日内处理；"
            "3. 也可在争议发生之日起1年内向劳动人事争议仲裁委员会申请仲裁，仲裁不收费。"
            "农民工工资被拖欠的，可要求总承包单位先行清偿。"
        ),
        "body_en": (
            "1. Gather evidence: contract, attendance records, payslips, work chat "
            "messages, colleagues' statements. 2. Complain to the labour inspectorate (via "
            "12345 or 12333); it normally deals with it within 15 working days of "
            "accepting the case. 3. You can also apply for free labour arbitration within "
            "one year. Construction workers can ask the main contractor to pay first."
        ),
        "keywords": ["拖欠工资", "欠薪", "劳动仲裁", "unpaid wages", "arbitration"],
    },
    {
        "service": "social-assistance",
        "title_zh": "低保申请条件和办理流程",
        "title_en": "Applying for the minimum living allowance (dibao)",
        "body_zh": (
            "家庭月人均收入低于江城市城乡低保标准、且家庭财产符合规定的，可申请低保。"
            "由户主向户籍所在地街道（乡镇）提出申请，提供身份证、户口簿、收入证明等材料，"
            "经入户调查、民主评议和公示后，由区民政局审批，一般在30个工作日内办结。"
            "也可在“江城民政”小程序线上申请。"
        ),
        "body_en": (
            "Families whose monthly income per person is below Jiangcheng's dibao line, "
            "and whose assets meet the rules, can apply. The head of the household applies "
            "at the subdistrict (or township) office where they are registered with ID, "
            "household register and proof of income. After a home visit, community review "
            "and public notice, the district civil affairs bureau decides, normally within "
            "30 working days. You can also apply in the Jiangcheng Civil Affairs mini-app."
        ),
        "keywords": ["低保", "申请", "救助", "dibao", "minimum living allowance"],
    },
    {
        "service": "vaccination",
        "title_zh": "被狗咬伤后如何接种狂犬疫苗",
        "title_en": "Rabies vaccination after a dog bite",
        "body_zh": (
            "被咬伤或抓伤后，立即用肥皂水和流动清水交替冲洗伤口至少15分钟，"
            "并尽快（最好24小时内）到狂犬病预防处置门诊接种疫苗，严重伤口需注射免疫球蛋白。"
            "全市各区均设有24小时狂犬病处置门诊，位置可在“江城疾控”公众号查询。"
        ),
        "body_en": (
            "After a bite or scratch, wash the wound with soap and running water for at "
            "least 15 minutes and get vaccinated at a rabies clinic as soon as possible "
            "(ideally within 24 hours); deep wounds also need immunoglobulin. Every "
            "district has a 24-hour rabies clinic; find them on the Jiangcheng CDC WeChat "
            "account."
        ),
        "keywords": ["狂犬疫苗", "狗咬", "接种", "rabies", "dog bite"],
    },
]
