"""GB/T 22239-2019 (信息安全技术 网络安全等级保护基本要求), 安全计算环境, as far as a Linux host shows it.

The general requirements of level 2 are in chapter 7 and of level 3 in chapter 8; 安全计算环境 is x.1.4 in both.
Each family below gives its clause number per level and the requirement items (a, b, ...) a check maps to, in
the standard's words (abridged where marked …). Level 3 adds items the level-2 text does not have (身份鉴别 d,
访问控制 e–g, 安全审计 d, 入侵防范 f) and numbers 个人信息保护 8.1.4.11 where level 2 has 7.1.4.10 (level 3
inserts 数据保密性 as 8.1.4.8). Families with no host-visible evidence (可信验证, 数据完整性, 数据保密性, 数据备份恢复,
剩余信息保护) are left to the assessment.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Family", "FAMILIES", "STANDARD", "LEVELS", "clause_number", "item_text"]

STANDARD = "gbt22239-2019"
LEVELS = (2, 3)


def _both(text: str) -> dict[int, str]:
    """An item whose words are the same at level 2 and level 3."""
    return {2: text, 3: text}


@dataclass(frozen=True)
class Family:
    key: str
    name: str  # 身份鉴别
    english: str
    numbers: dict[int, str]  # level -> clause number
    items: dict[str, dict[int, str]]  # item letter -> level -> requirement text


FAMILIES: tuple[Family, ...] = (
    Family("identity", "身份鉴别", "Identification and authentication", {2: "7.1.4.1", 3: "8.1.4.1"}, {
        "a": _both("应对登录的用户进行身份标识和鉴别，身份标识具有唯一性，身份鉴别信息具有复杂度要求并定期更换"),
        "b": _both("应具有登录失败处理功能，应配置并启用结束会话、限制非法登录次数和当登录连接超时自动退出等相关措施"),
        "c": _both("当进行远程管理时，应采取必要措施防止鉴别信息在网络传输过程中被窃听"),
        "d": {3: "应采用口令、密码技术、生物技术等两种或两种以上组合的鉴别技术对用户进行身份鉴别，且其中一种鉴别技术"
                 "至少应使用密码技术来实现"},
    }),
    Family("access", "访问控制", "Access control", {2: "7.1.4.2", 3: "8.1.4.2"}, {
        "a": _both("应对登录的用户分配账户和权限"),
        "b": _both("应重命名或删除默认账户，修改默认账户的默认口令"),
        "c": _both("应及时删除或停用多余的、过期的账户，避免共享账户的存在"),
        "d": _both("应授予管理用户所需的最小权限，实现管理用户的权限分离"),
        "g": {3: "应对重要主体和客体设置安全标记，并控制主体对有安全标记信息资源的访问"},
    }),
    Family("audit", "安全审计", "Security audit", {2: "7.1.4.3", 3: "8.1.4.3"}, {
        "a": _both("应启用安全审计功能，审计覆盖到每个用户，对重要的用户行为和重要安全事件进行审计"),
        "c": _both("应对审计记录进行保护，定期备份，避免受到未预期的删除、修改或覆盖等"),
        "d": {3: "应对审计进程进行保护，防止未经授权的中断"},
    }),
    Family("intrusion", "入侵防范", "Intrusion prevention", {2: "7.1.4.4", 3: "8.1.4.4"}, {
        "a": _both("应遵循最小安装的原则，仅安装需要的组件和应用程序"),
        "b": _both("应关闭不需要的系统服务、默认共享和高危端口"),
        "c": _both("应通过设定终端接入方式或网络地址范围对通过网络进行管理的管理终端进行限制"),
        "e": _both("应能发现可能存在的已知漏洞，并在经过充分测试评估后，及时修补漏洞"),
        "f": {3: "应能够检测到对重要节点进行入侵的行为，并在发生严重入侵事件时提供报警"},
    }),
    Family("malware", "恶意代码防范", "Malicious code prevention", {2: "7.1.4.5", 3: "8.1.4.5"}, {
        "a": {2: "应安装防恶意代码软件或配置具有相应功能的软件，并定期进行升级和更新防恶意代码库",
              3: "应采用免受恶意代码攻击的技术措施或主动免疫可信验证机制及时识别入侵和病毒行为，并将其有效阻断"},
    }),
    Family("privacy", "个人信息保护", "Personal information protection", {2: "7.1.4.10", 3: "8.1.4.11"}, {
        "b": _both("应禁止未授权访问和非法使用用户个人信息"),
    }),
)

_BY_KEY = {f.key: f for f in FAMILIES}


def family(key: str) -> Family:
    return _BY_KEY[key]


def clause_number(key: str, level: int, item: str = "") -> str:
    """"8.1.4.1" or, with an item, "8.1.4.1 a)"."""
    number = _BY_KEY[key].numbers[level]
    return f"{number} {item})" if item else number


def item_text(key: str, item: str, level: int) -> str:
    return _BY_KEY[key].items.get(item, {}).get(level, "")
