"""What citizens write and what departments answer, for the demo history.

Data only. ``{addr}`` in a message is replaced by an address in the ticket's
district ("东湖区解放路88号" / "88 Jiefang Road, Donghu District"). Each message is
written so that the routing keywords of its own service find it.
"""

from __future__ import annotations

# service code → citizen messages in Chinese.
MESSAGES_ZH: dict[str, list[str]] = {
    "street-light": [
        "{addr}附近的路灯已经连续三个晚上不亮了，晚上回家一片漆黑，老人小孩走路很危险，请尽快维修。",
        "{addr}门口一排路灯一直在闪，忽明忽暗，开车经过很晃眼。",
        "反映一下，{addr}这段路的路灯白天也亮着，浪费电，麻烦有关部门看看。",
    ],
    "pothole": [
        "{addr}路面塌陷出一个大坑，直径差不多有一米，昨晚有电动车摔倒了，请赶紧处理。",
        "{addr}人行道地砖松动翘起，下雨天一踩就溅一身泥水，已经好几个月了。",
        "{addr}路口有好几处坑洼，车辆经过颠簸得厉害，希望尽快修补。",
    ],
    "manhole-cover": [
        "{addr}有个井盖丢了，只剩一个黑洞，晚上非常危险，我先用树枝围起来了，请马上派人来。",
        "{addr}路中间的井盖破损松动，车一压就哐哐响，随时可能翻起来。",
    ],
    "drainage": [
        "{addr}下水道堵塞，污水外溢到路面，臭气熏天，居民出行要踩着污水走。",
        "昨天下大雨以后，{addr}积水到膝盖那么深，到现在还没退，排水口好像堵了。",
    ],
    "garbage": [
        "{addr}的垃圾站已经三天没人清运了，垃圾堆得满地都是，天气一热臭得不行。",
        "{addr}路边的垃圾桶满溢好几天了，野猫野狗翻得到处都是垃圾。",
        "{addr}后面空地上有人长期倾倒建筑垃圾和生活垃圾，形成了一个垃圾堆，请清理。",
    ],
    "street-cleaning": [
        "{addr}这段路渣土车撒漏严重，路面全是泥浆，一下雨更脏，请督促清扫保洁。",
        "{addr}的道路好多天没人清扫了，落叶和油污很多，希望加强保洁。",
    ],
    "public-toilet": [
        "{addr}的公共厕所又脏又臭，洗手池坏了也没人修，冲水也不好用。",
    ],
    "illegal-vending": [
        "{addr}每天晚上都有流动摊贩摆摊，占道经营把人行道全占了，行人只能走机动车道。",
        "{addr}几家饭店出店经营，晚上在门口露天烧烤，桌子摆到路上，油烟很大。",
    ],
    "illegal-ads": [
        "{addr}小区楼道和电线杆上贴满了小广告，刚清理完又被乱贴，希望管一管。",
        "{addr}有商家私自挂了好几条横幅和广告牌，挡住了交通标志。",
    ],
    "illegal-building": [
        "{addr}顶楼住户在楼顶加盖了一层彩钢房，属于违章搭建，存在安全隐患，请查处。",
        "{addr}一楼商户私搭乱建，把公共绿地圈占起来做了仓库。",
    ],
    "trees": [
        "{addr}有棵大树被昨晚的大风吹得倒伏了，压在路边，挡住了一半车道。",
        "{addr}绿化带的树木长得太密，树枝挡住了三楼住户的窗户，能否安排修剪？",
    ],
    "park": [
        "{addr}旁边广场的健身器材坏了好几件，铁管断裂有尖角，小孩玩很容易受伤。",
        "{addr}附近儿童游乐设施的滑梯破了个洞，希望尽快维修。",
    ],
    "water-outage": [
        "{addr}从今天早上开始停水，事先没看到任何通知，一家人做饭洗漱都没法弄。",
        "{addr}整栋楼水压低，六楼以上基本没有水，自来水时断时续已经一个星期了。",
    ],
    "water-main-burst": [
        "{addr}路边水管爆裂了，水从地下往外冒，路面已经淹了，请赶紧派人抢修。",
    ],
    "water-quality": [
        "{addr}这两天自来水发黄，还有点浑浊，不敢喝，请检测一下水质。",
    ],
    "power-outage": [
        "{addr}整个小区突然停电了，已经三个小时了，电梯也停了，老人下不了楼。",
        "{addr}这一片晚上经常跳闸断电，电压不稳，家里电器都不敢用。",
    ],
    "gas": [
        "{addr}家里燃气表显示有余额，但是一直没气，灶台点不着，天然气公司电话打不通。",
    ],
    "heating": [
        "{addr}家里暖气不热，室温只有14度，老人孩子都冻感冒了，请供热公司来看看。",
    ],
    "property-management": [
        "{addr}小区物业公司收了物业费却不干事，楼道灯坏了几个月不修，垃圾也不按时清。",
        "{addr}物业擅自上涨停车费，还不公示收费依据，业主意见很大。",
    ],
    "housing-support": [
        "想咨询一下公租房怎么申请，我是外地来江城工作的，有没有租房补贴？",
    ],
    "construction-safety": [
        "{addr}工地的脚手架外面的安全网破了，经常有东西往下掉，下面就是人行道，太危险了。",
    ],
    "elevator": [
        "{addr}住宅楼的电梯这个月停运三次了，上周还困过人，请有关部门检查一下。",
    ],
    "noise-construction": [
        "{addr}旁边工地每天夜间施工到凌晨两三点，打桩声音特别大，严重影响休息。",
        "{addr}附近工地施工噪音太大了，中午和晚上也不停，请查一下有没有夜间施工许可。",
        "投诉{addr}的工地半夜施工，渣土车进进出出，已经连续一周了。",
    ],
    "noise-neighbourhood": [
        "{addr}广场上每天晚上跳广场舞，音响开得特别大，一直到十点多，严重扰民。",
        "{addr}楼下新开的酒吧每晚放音乐到凌晨，噪音很大，孩子睡不着觉。",
        "{addr}楼上住户装修，周末一大早就开始电钻噪音，扰民严重。",
    ],
    "air-pollution": [
        "{addr}附近有家工厂晚上偷偷排放废气，空气里有一股刺鼻的异味，开窗都不行。",
        "{addr}楼下餐馆的油烟直接排到居民楼，整栋楼都是油烟味。",
    ],
    "water-pollution": [
        "{addr}附近的河道水发黑发臭，还有死鱼，怀疑有企业偷排污水。",
    ],
    "bus": [
        "我在{addr}的站台等车，公交车经常甩站不停，今天等了四十分钟，司机直接开过去了。",
        "今天坐的公交车司机态度很差，开车急刹车急转弯，有老人差点摔倒，请处理。",
    ],
    "bus-route-suggestion": [
        "建议增开从{addr}到江城南站的公交线路，现在要转两次车，早晚高峰非常不方便。",
        "大学城这边的公交班次太少，建议加密班次，延长运营到晚上十一点。",
    ],
    "taxi": [
        "昨晚在{addr}打出租车，司机绕路还不打表，到了要价八十，正常只要三十。",
        "在江北火车站出租车拒载，排队的司机都说不去近的地方。",
    ],
    "illegal-parking": [
        "{addr}小区门口长期有车违章停车，堵住了消防通道，救护车都进不来。",
        "{addr}门口有辆车乱停车堵门，我的车出不去，打电话也联系不上车主。",
    ],
    "traffic-signal": [
        "{addr}路口的红绿灯不亮了，车和行人都乱走，很容易出事故。",
    ],
    "food-safety": [
        "今天中午在{addr}的一家餐馆吃饭，回家后全家拉肚子，怀疑食品不卫生。",
        "{addr}的超市在卖过期的牛奶和面包，生产日期都改过，请食品安全部门查处。",
    ],
    "consumer": [
        "我在{addr}一家健身房办了预付卡，才用了两次商家就跑路了，要求退款。",
        "在{addr}的商场买的手机有质量问题，商家拒绝售后，也不给退款。",
        "{addr}一家店标价和结账价格不一样，多收了我几十块，商家不承认。",
    ],
    "wage-arrears": [
        "我们在{addr}的工地干了半年，包工头拖欠工资不发，二十多个农民工讨薪无门。",
        "公司已经三个月不发工资了，加班费也没有，老板说没钱，我们该怎么维权？",
    ],
    "social-insurance": [
        "请问社保断缴了三个月，会不会影响以后的养老保险？怎么补缴？",
        "我刚换了工作，医保怎么转移？新单位说社保卡要重新办吗？",
        "想问一下失业金怎么申领，需要什么材料，能领几个月？",
    ],
    "employment": [
        "应届毕业生想找工作，请问最近有没有招聘会？有没有职业培训补贴？",
    ],
    "school-enrolment": [
        "孩子明年上小学，我们租房住在{addr}，请问入学需要什么材料？学区怎么划片？",
        "请问幼儿园转学需要办理什么手续？",
    ],
    "education-fees": [
        "孩子学校老师组织有偿补课，不参加的学生在班上被区别对待，请教育局管一管。",
    ],
    "medical": [
        "在市第一医院看病，挂号排了三个小时，医生看了不到两分钟，态度还很差。",
    ],
    "vaccination": [
        "孩子被狗咬了，请问{addr}附近哪里可以打狂犬疫苗？",
    ],
    "elderly-care": [
        "家里老人八十五岁了，请问高龄津贴怎么申请？社区有没有老年食堂？",
    ],
    "social-assistance": [
        "我家里有病人，生活困难，想申请低保，请问需要什么条件？",
    ],
    "public-order": [
        "{addr}楼道里很多电动车充电，飞线充电到处都是，消防隐患很大，请派出所管一管。",
    ],
    "city-suggestion": [
        "建议在{addr}附近增设一个过街天桥，现在行人过马路太危险。",
        "希望政府在老旧小区多增设一些充电桩和休息座椅，方便居民。",
    ],
    "praise": [
        "上周反映的路灯问题，城管很快就修好了，还打电话回访，特别感谢，点赞！",
        "感谢{addr}社区的工作人员，帮我家老人办好了手续，服务很好。",
    ],
    "other": [
        "请问{addr}附近的公共自行车什么时候恢复使用？",
        "我的户口本丢失了，补办要去哪里？",
    ],
    "secretary-mailbox": [
        "书记信箱：尊敬的书记，我是住在{addr}的居民，想就老旧小区的改造谈谈看法。",
    ],
    "mayor-mailbox": [
        "市长信箱：市长您好，{addr}一带的问题反映多次仍未解决，恳请市长关注。",
    ],
}

# service code → citizen messages in English.
MESSAGES_EN: dict[str, list[str]] = {
    "street-light": [
        "The street light outside {addr} has been out for a week. The street is completely "
        "dark at night.",
    ],
    "pothole": [
        "There is a deep pothole on the road at {addr}. A cyclist fell off there this morning.",
    ],
    "garbage": [
        "The rubbish bins at {addr} have not been emptied for days and are overflowing.",
    ],
    "noise-neighbourhood": [
        "Loud music from a bar near {addr} every night until 2 am. The noise is unbearable.",
    ],
    "noise-construction": [
        "Construction noise from the building site at {addr} goes on all night, pile driving "
        "after midnight.",
    ],
    "illegal-parking": [
        "A car is parked across the fire lane at {addr}, blocking the entrance. Illegal "
        "parking every day.",
    ],
    "water-outage": [
        "No water in our building at {addr} since this morning and no notice was given.",
    ],
    "power-outage": [
        "Power cut in our block at {addr} for four hours now. No electricity, the lifts are stuck.",
    ],
    "taxi": [
        "The taxi driver refused to use the taxi meter and overcharged me from {addr} to the "
        "railway station.",
    ],
    "consumer": [
        "I bought a prepaid card at a gym near {addr}, the shop closed and will not give a refund.",
    ],
    "social-insurance": [
        "How do I check my social insurance contributions? I want to know about my pension "
        "as a foreign employee.",
    ],
    "school-enrolment": [
        "We moved to {addr}. How do we apply for a primary school place for our son? Is "
        "enrolment open?",
    ],
    "air-pollution": [
        "Thick smoke and fumes from a factory near {addr} every evening; the smell gets into "
        "our flat.",
    ],
    "food-safety": [
        "We got food poisoning after eating at a restaurant near {addr}. The kitchen hygiene "
        "looked terrible.",
    ],
    "praise": [
        "Thanks to the team who fixed the street light so quickly. Well done!",
    ],
    "other": [
        "Where can I renew my residence registration as a foreigner living at {addr}?",
    ],
}

# Department replies (办理答复), by service; {dept} is the department's name.
REPLIES_ZH: dict[str, list[str]] = {
    "street-light": [
        "经现场核查，该处路灯因电缆老化断路不亮，我单位已于当日更换电缆和灯具，路灯已恢复正常照明。",
    ],
    "pothole": [
        "经核实，该路段坑洼系雨水冲刷所致，已安排养护班组沥青修补完毕，并设置警示标志待路面凝固。",
    ],
    "manhole-cover": [
        "接单后养护人员30分钟内到达现场设置围挡，已更换新的防坠井盖，隐患已消除。",
    ],
    "drainage": [
        "经现场疏通，排水管道堵塞物已清除，路面积水已排干，我单位将把该处纳入汛期重点巡查。",
    ],
    "garbage": [
        "经核查，因清运车辆故障导致垃圾未及时清运，现已全部清运完毕，并对该垃圾站增加每日一次清运频次。",
    ],
    "illegal-vending": [
        "我单位执法队员已到现场劝离流动摊贩，对出店经营商户下达整改通知书，今后将加强夜间巡查。",
    ],
    "illegal-building": [
        "经现场勘查，该构筑物未取得规划许可，属违法建设，已下达限期拆除决定书，当事人已承诺自行拆除。",
    ],
    "water-outage": [
        "经排查，系片区供水管网阀门故障导致停水，抢修人员已更换阀门，当日下午恢复供水。",
    ],
    "power-outage": [
        "经查，停电原因为小区配电箱故障，抢修人员已更换故障设备，供电已恢复正常。",
    ],
    "property-management": [
        "我局已约谈该物业公司，责令其公示收费依据并限期维修楼道照明，街道将跟踪整改落实情况。",
    ],
    "noise-construction": [
        "经核查，该工地未办理夜间施工证明，我局已责令其停止夜间施工并立案处罚，将加强夜间巡查。",
    ],
    "noise-neighbourhood": [
        "民警已到现场对相关人员进行劝导，当事人承诺降低音量并在晚上九点前结束活动。",
    ],
    "air-pollution": [
        "我局执法人员已对该企业进行检查，责令其整改废气处理设施，并将开展跟踪监测。",
    ],
    "consumer": [
        "经我局调解，商家同意退还剩余预付款，市民已确认收到退款。",
    ],
    "food-safety": [
        "我局已对该餐馆进行突击检查，发现后厨卫生不达标，已责令停业整改并立案调查。",
    ],
    "taxi": [
        "经调取行车记录核实，驾驶员存在绕路和不打表行为，已责令退还多收费用并给予处罚。",
    ],
    "illegal-parking": [
        "民警已到现场联系车主将车辆移走，并对违法停车行为依法处罚，将加强该处巡查。",
    ],
    "wage-arrears": [
        "劳动保障监察大队已约谈用工单位，责令其限期支付拖欠工资，工人工资已全部结清。",
    ],
    "social-insurance": [
        "已电话联系市民解答：断缴期间可由单位补缴，个人账户累计计算，不影响已缴年限；并告知了线上补缴办理方式。",
    ],
    "school-enrolment": [
        "已电话联系市民，告知了今年的招生时间、所需材料及所在学区的对口学校，市民表示清楚。",
    ],
}

REPLIES_EN: dict[str, list[str]] = {
    "street-light": [
        "The light had a faulty cable. Our crew replaced the cable and lamp the same day and "
        "it works again.",
    ],
    "pothole": ["The pothole was filled with asphalt and the site is signposted until it sets."],
    "garbage": ["The bins were emptied and the station is now collected twice a day."],
    "noise-neighbourhood": [
        "Officers visited the bar; the owner agreed to stop amplified music at 22:00.",
    ],
    "water-outage": ["A valve on the main had failed; it was replaced and supply restored."],
    "power-outage": ["A switchgear fault in the estate was repaired and power restored."],
    "consumer": ["After our mediation the shop refunded the balance of the card."],
    "social-insurance": [
        "We called back and explained how to check contributions online and at 12333.",
    ],
}

# By ticket kind, when a service has no reply of its own.
GENERIC_REPLIES_ZH: dict[str, list[str]] = {
    "report": [
        "接单后我单位已安排人员到现场核查处置，问题已整改完毕，感谢您的监督。",
        "经现场核实，情况属实，已协调相关责任单位处理完毕，后续将加强日常巡查。",
    ],
    "complaint": [
        "经调查核实，已责令相关责任方整改，并将加强监管。已电话告知市民处理结果。",
        "我单位已受理并依法处理，当事方已作出整改承诺，我们将持续跟踪。",
    ],
    "inquiry": [
        "已电话联系市民进行政策解答，并告知了办理渠道和所需材料，市民表示清楚。",
        "经与市民电话沟通，已详细说明相关政策规定和办理流程。",
    ],
    "suggestion": [
        "感谢您的建议。我单位已组织研究，该建议将纳入明年工作计划统筹考虑。",
    ],
    "praise": [
        "感谢市民的肯定，我们已将表扬转达给相关工作人员，将继续做好服务。",
    ],
}

GENERIC_REPLIES_EN: dict[str, list[str]] = {
    "report": ["We inspected the site and the problem has been fixed. Thank you for reporting it."],
    "complaint": [
        "We investigated, ordered those responsible to put it right and will keep checking.",
    ],
    "inquiry": ["We called you back, explained the rules and where to apply."],
    "suggestion": ["Thank you. Your suggestion will be considered in next year's plans."],
    "praise": ["Thank you — we have passed your kind words on to the staff."],
}

# Reasons a department gives for returning a ticket (退单).
RETURN_WRONG_DISTRICT = "经核实，该地址不在我单位辖区，属{district}管辖，请改派。"
RETURN_WRONG_DUTY = "该事项不属于我单位职责范围，建议转{bureau}办理。"

# Reasons for a reopen (发回重办), told to the callback agent.
REOPEN_REASONS: list[str] = [
    "市民表示问题仍未解决，要求重新处理。",
    "回访时市民反映现场情况与答复不符。",
    "市民对处理结果不满意，认为只是临时处理。",
]

EXTENSION_REASONS: list[str] = [
    "需要协调多个部门联合处置，申请延期。",
    "涉及设施改造，需走采购程序，申请延期。",
    "当事人暂时联系不上，需要进一步调查取证。",
]

# Family names for citizens' names as agents record them ("张先生").
SURNAMES_ZH = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓"
    "曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
)
SURNAMES_EN = [
    "Smith",
    "Brown",
    "Taylor",
    "Wilson",
    "Garcia",
    "Müller",
    "Martin",
    "Lee",
    "Kim",
    "Nguyen",
    "Rossi",
    "Dubois",
    "Johnson",
    "Patel",
    "Khan",
]
