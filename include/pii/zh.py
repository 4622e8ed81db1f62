"""Chinese person names and addresses, offline: no model, so a zh-CN dataset is protected
without an LLM.

Why hand-written rules rather than a library: the NER models that find Chinese names (spaCy's
zh_core_web_*, HanLP, LAC) are downloads of 50 MB to 1 GB that this platform may not fetch at
run time, and jieba's name tagging guesses from word frequencies, which calls a product such as
李宁运动鞋 a person as readily as 李明. Names here need evidence around them, the way a reader
tells them apart:

* **names** are a surname from the common list (single or compound) and one or two given
  characters, found only with context: a role word before (客户 / 联系人 / 收件人 / 我叫 ...), a
  title after (先生 / 女士 / 经理 ..., where the surname alone is the name: 王先生), or a
  reporting verb after (来电 / 反映 / 投诉 / 表示 ...). A bare "surname + character" (高速,
  王者, 马桶) is never a name;
* **addresses** end in a road and a number (中关村大街1号, 人民路88弄) or an estate and a
  building (阳光花园3栋), with any administrative units before them (省 / 市 / 区 / 县 / 镇 ...)
  and any building, unit and room after. Their start never takes in the words before
  (我家住在, 地址是).

Measured in ``bench/pii_zh.py`` on texts from other templates and lists than these rules were
written from.
"""

from __future__ import annotations

import re
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

# The common single-character surnames (about 400, covering nearly all of the population)
# and the compound ones still in use.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施"
    "文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛"
    "曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席"
    "卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁"
    "胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋"
    "相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾"
    "茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "令狐", "夏侯", "宇文",
    "司徒", "端木", "独孤", "南宫", "西门", "轩辕", "呼延", "百里", "澹台", "申屠", "钟离",
)  # fmt: skip
# Words before a name that say a person is meant.
ROLE_WORDS = (
    "客户", "顾客", "联系人", "收件人", "收货人", "寄件人", "发件人", "姓名", "名字", "我叫", "名叫", "叫做", "我是",
    "本人", "患者", "病人", "用户", "经办人", "负责人", "签收人", "投诉人", "业务员", "客服", "员工", "同事", "业主",
    "租户", "房东", "司机", "快递员", "家属", "老公", "老婆", "丈夫", "妻子", "儿子", "女儿", "父亲", "母亲", "法人",
    "申请人", "委托人", "代理人", "担保人", "持卡人", "户主", "学生", "家长",
)  # fmt: skip
# Titles after a surname (王先生) or a full name (王小明女士), and job titles, which follow a
# surname alone (王经理; 项目经理 is no person).
TITLES = (
    "先生",
    "女士",
    "小姐",
    "老师",
    "医生",
    "大夫",
    "护士",
    "师傅",
    "同学",
    "阿姨",
    "叔叔",
    "老板",
    "律师",
    "警官",
)
JOB_TITLES = (
    "经理", "总监", "主任", "教授", "博士", "总经理", "董事长", "部长", "科长", "处长", "局长", "院长", "校长", "总",
)  # fmt: skip
# Verbs that follow the person who did them.
VERBS = (
    "来电", "致电", "反映", "投诉", "表示", "称", "说", "签收", "留言", "咨询", "报修", "确认", "申请", "要求",
    "打电话", "联系", "来信", "提出", "回复", "同意", "办理", "预约", "下单", "购买", "退货", "付款",
    "住在", "家住", "一起",
)  # fmt: skip
# Characters a given name does not start or end with: words that follow a surname character
# in ordinary text (the 的 of 王的, the 是 of 马是).
_NOT_GIVEN = "的了在是和与及或说来电话们这那也都就还吗呢吧啊把被给从向对为以于而且但并很再又才已要会能"
_HAN = "\u4e00-\u9fff"


# Ordinary words that begin with a surname character: never the start of a name.
def _words(*lines: str) -> frozenset[str]:
    return frozenset(word for line in lines for word in line.split())


NOT_NAMES = _words(
    "马上 周末 明天 明年 明白 高速 高兴 高级 高端 高温 王者 王牌 黄金 黄色",
    "金额 金属 白色 白天 方便 方面 方法 江湖 林业 张力 司机 石头 常常 常见",
    "时候 时间 文件 文字 安全 安装 向前 万一 平时 平台 全部 全面 和平 都是",
    "于是 但是 由于 应该 成功 成本 国家 国内 相关 单位 项目 区域 关于 华为",
    "苏宁 温度 包装 程序 余额 雷达 关键 钱包 孙子 朱砂 陈列 杨柳 许多 韩国",
    "曹操 田地 董事 潘多 杜绝 叶子 程度 苏州 魏晋 丁点 任何 任务 沈阳 卢布",
    "姜汁 钟表 陆续 汪洋 范围 石油 夏天 夏季 付款 付费 方向 方式 白酒 熊猫",
    "秦朝 江苏 江西 段落 雷电 龙头 史上 陶瓷 黎明 贺卡 顾客 顾问 毛巾 毛病",
    "万元 钱款 严重 严格 武汉 戴上 莫名 孔子 向日 汤圆 常规 温馨 康复 施工",
    "文明 牛奶 安排 齐全 易于 乔迁 庞大 颜色 庄园 章节 鲁迅 岳父 殷勤 申请",
    "申报 欧洲 关注 关闭 兰州 焦虑 左右 柳树 甘肃 祝福 包括 包裹 宁波 宁可",
    "尚未 符合 舒服 舒适 纪念 纪录 梅花 童年 凌晨 毕业 单独 单号 季度 涂料",
    "成都 成为 苗条 谷歌 盛大 曲线 骆驼 蓝色 蓝牙 路上 路由 游戏 辛苦 管理",
    "柴油 蒙古 鲍鱼 华南 房间 房子 屈服 解决 牟利 艾滋 尤其 阳光 时长 农业",
    "司法 卓越 古代 吉林 简单 车辆 车子 项链 连接 连续 芦苇 麦当 景色 党员",
    "宫殿 费用 冷气 冷却 席位 卫生 米饭 柏林 宗旨 桂林 全国 应用 闵行 苟且",
    "边缘 师傅 和谐 仇恨 隋朝 商品 商家 刁难 沙发 荣誉 巫师 桑拿 郎中 甄别",
    "丛林 仲裁 敖包 巩固 明确 池塘 查询 查看 麻烦 迟到 官方 封装 谈判 鞠躬",
    "惠普 荆州 乐趣 冀州 郁闷 南方 南京 班级 储存 原因 原来 栗子 燕麦 楚国",
    "劳动 皮肤 粟米 楼上 盘子 满意 闻到 位置 厉害 伊利 区别 海外 花费 权限",
    "强烈 帅气 屠宰 豆浆 朴素 盖子 练习 廉价 井盖 祖国 漆面 巴士 丰富 支付",
    "支持 国际 平安 计划 索赔 宣传 晋升 相机 初次 门口 云端 容易 敬请 来自",
    "都市 普通 浦东 戈壁 伏特 鹿角 薄膜 辜负 羊毛 阿里 乌龙 母亲 修改 赫兹",
    "杭州 况且 那些 宿舍 鲜花 印刷 隆重 诸多 战略 危险 玉米 银行 亢奋 公司",
    "哈哈 湛江 宾馆 戎装 勾选 茅台 利润 呼叫 居然 揭晓 干净 但凡 冶金 元旦",
    "束缚 檀香 衣服 信息 展示 阴天 智能 幸福 奉献 植物 衡量 富有 闭合 由此",
)

_SURNAME = "(?:" + "|".join(COMPOUND_SURNAMES) + f"|[{SURNAMES}])"
_GIVEN = f"(?:(?![{_NOT_GIVEN}])[{_HAN}])"
_NAME = f"{_SURNAME}{_GIVEN}{{1,2}}?"
_AFTER_NAME = f"(?=[^{_HAN}]|$|" + "|".join(TITLES + JOB_TITLES + VERBS + ("电话", "手机", "的")) + ")"
_ROLE = "(?:" + "|".join(ROLE_WORDS) + ")"
_NOT_AFTER = "(?<![这那一每哪该此两几各])"  # 这位女士: a classifier, not the surname 位

_BY_ROLE = re.compile(f"{_ROLE}(?:是|为|叫|：|:|\\s)*({_NAME}){_AFTER_NAME}")
_BY_TITLE = re.compile(f"{_NOT_AFTER}({_SURNAME}{_GIVEN}{{0,2}}?)(?=" + "|".join(TITLES) + ")")
_BY_JOB = re.compile(f"{_NOT_AFTER}({_SURNAME})(?=" + "|".join(JOB_TITLES) + ")")
_BY_VERB = re.compile(f"(?:^|(?<=[^{_HAN}])|(?<=[和与及跟给叫让请由被经向对]))({_NAME})(?=" + "|".join(VERBS) + ")")

# -- addresses ---------------------------------------------------------------------------------
_NUM = "[0-9０-９一二三四五六七八九十百零〇]+"
# A character of a place name: not the words that come before an address in a sentence.
_PLACE = f"(?:(?![我你他她的在住是到于把从向家要想请寄送址为])[{_HAN}])"
_UNITS = "(?:省|自治区|特别行政区|市|自治州|地区|盟|区|县|旗|镇|乡|街道|村)"
_ADMIN = f"(?:{_PLACE}{{2,8}}?{_UNITS})"
_ROAD = f"(?:{_PLACE}{{1,10}}?(?:大道|大街|路|街|巷|弄|胡同))"
_ESTATE = f"(?:{_PLACE}{{1,10}}?(?:小区|花园|大厦|公寓|广场|家园|新村|社区|苑|园|城|府|中心))"
_BUILDING = f"(?:{_NUM}(?:号楼|栋|幢|座|单元|层|楼|室|号|户|门)|[A-Za-z]座)"
_ROOM = "(?:[0-9]{3,4}(?![0-9]))?"  # 3栋2单元501: the room without 室
_ADDRESS = re.compile(
    f"{_ADMIN}*(?:{_ROAD}{_NUM}(?:号|弄)(?:院)?(?:{_ESTATE})?{_BUILDING}*|{_ESTATE}{_BUILDING}+){_ROOM}"
)
_TITLED = TITLES + JOB_TITLES


class ChineseNameRecognizer(EntityRecognizer):
    """PERSON in Chinese text: a surname and given name with a role word, title or verb."""

    def __init__(self, score: float = 0.85) -> None:
        self.score = score
        super().__init__(supported_entities=["PERSON"], supported_language="zh", name="zh_person")

    def load(self) -> None:
        return None

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        if "PERSON" not in entities:
            return []
        spans = {
            m.span(1)
            for pattern in (_BY_ROLE, _BY_TITLE, _BY_JOB, _BY_VERB)
            for m in pattern.finditer(text)
            if m.group(1) and m.group(1)[:2] not in NOT_NAMES and not m.group(1).endswith(_TITLED)
        }
        return [RecognizerResult("PERSON", s, e, self.score) for s, e in sorted(spans)]


class ChineseAddressRecognizer(EntityRecognizer):
    """ADDRESS in Chinese text: administrative units, a road and number or an estate and building."""

    def __init__(self, score: float = 0.85) -> None:
        self.score = score
        super().__init__(supported_entities=["ADDRESS"], supported_language="zh", name="zh_address")

    def load(self) -> None:
        return None

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        if "ADDRESS" not in entities:
            return []
        return [RecognizerResult("ADDRESS", m.start(), m.end(), self.score) for m in _ADDRESS.finditer(text)]


def build_zh() -> list[EntityRecognizer]:
    return [ChineseNameRecognizer(), ChineseAddressRecognizer()]
