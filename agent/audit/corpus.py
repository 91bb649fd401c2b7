"""The generated part of the weak-password corpus, ranked, from the public facts in agent/data/README.md.

agent/data/weak_passwords.txt holds the hand-ranked top of the list (administrator passwords seen on servers,
interleaved with the top consumer passwords). This module adds, after it and in this order:

1. default passwords of equipment and software common on Chinese government networks (network gear, security
   appliances, video surveillance, middleware) -- the first thing an intruder tries after the top list;
2. policy-compliant shapes administrators choose to satisfy complexity rules: a word (admin, abc, qwe, the
   vendor names above) capitalised or not, with ``@123``, ``@1234``, ``123456``, a recent year, ``!@#`` ...;
3. keyboard walks and their mixed-case / symbol forms;
4. Pinyin of the most common surnames and given names (the 2017 study: 76 % of Chinese passwords are digits
   or Pinyin plus digits), as full names (zhangsan, wangwei) with the digit and symbol tails people use;
5. digit runs: repeated digits, ascending and descending runs, and dates of birth as YYYYMMDD for 1960-2005
   (sampled: the first of each month, and the dates people pick most: 0101, 0520, 1001, 1111, 1212, 1314).

Everything is deterministic (the same list on every host, so the cache key is stable) and deduplicated,
keeping the first (likeliest) place of each candidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["generated_candidates", "SURNAMES", "GIVEN_NAMES", "VENDOR_DEFAULTS"]

# Defaults published in vendors' manuals and repeated in every weak-password audit list.
VENDOR_DEFAULTS: tuple[str, ...] = (
    "Admin@huawei", "Huawei@123", "huawei@123", "Huawei12#$", "Changeme_123", "Admin@123", "admin@huawei.com",
    "h3capadmin", "admin@h3c", "H3C@123", "h3c", "Ruijie@123", "ruijie", "ruijie123", "Sangfor@123", "sangfor",
    "Sangfor123", "hillstone", "Hillstone@123", "topsec", "talent", "venus", "Venus@123", "dptech", "DPtech@123",
    "nsfocus", "NSFOCUS@123", "qianxin", "Qianxin@123", "admin888", "Hik12345", "hik12345", "12345abc", "ytsj123",
    "dahua", "admin123456", "tomcat", "s3cret", "manager", "weblogic", "weblogic123", "Weblogic@123", "oracle",
    "sys", "system", "manager1", "nacos", "jeecg", "zabbix", "Zabbix@123", "grafana", "kibana", "elastic",
    "changeme", "rabbitmq", "guest", "activemq", "mongo", "postgres", "mysql", "sa", "Sa123456", "sql2008",
    "Sql@2008", "seeyon", "Seeyon@123", "yonyou", "Yonyou@123", "kingdee", "Kingdee@123", "tongweb", "TongWeb@123",
    "kylin", "Kylin@123", "kylin123", "uos", "Uos@123", "openEuler12#$", "openeuler", "Huawei@2024",
)
_WORDS: tuple[str, ...] = (
    "admin", "root", "abc", "qwe", "test", "pass", "password", "huawei", "h3c", "ruijie", "sangfor", "system",
    "server", "zhengwu", "gov", "oa", "user", "guest", "wang", "zhang", "li", "xinxi", "wangluo", "jiankong",
    "beifen", "shuju", "web", "db", "sql", "ftp", "redis", "mysql", "oracle", "linux", "centos", "ubuntu",
    "kylin", "love", "woaini", "china",
)
_TAILS: tuple[str, ...] = (
    "@123", "123", "@1234", "1234", "123456", "@123456", "12345", "@12345", "!@#", "123!@#", "#123", "_123",
    "@123!", "123!", "@888", "888", "@666", "666", "@520", "520", "1314", "@1314", "@111", "111", "@000", "000",
    "!", "@", "#", "123.", ".123", "@abc", "qwe", "@qwe",
)
_YEAR_TAILS: tuple[str, ...] = ("@{y}", "{y}", "#{y}", "_{y}", "@{y}!")

_WALKS: tuple[str, ...] = (
    "qwerty", "qwer1234", "1234qwer", "qwe123", "123qwe", "qweasd", "qweasdzxc", "asdfgh", "asdf1234", "zxcvbn",
    "1qaz2wsx", "1qaz2wsx3edc", "2wsx3edc", "qazwsx", "qazwsxedc", "1qazxsw2", "zaq12wsx", "q1w2e3r4", "q1w2e3",
    "1q2w3e4r", "1q2w3e", "a1b2c3", "a1b2c3d4", "!QAZ2wsx", "1qaz@WSX", "1qaz!QAZ", "2wsx@WSX", "!QAZ@WSX",
    "1QAZ2wsx", "Qwer1234", "Qwer!234", "Qwe123!@#", "qwe!@#", "asd123", "zxc123", "12QWaszx", "Asdf1234",
    "P@ssw0rd123", "P@55w0rd", "Passw0rd!", "Pa$$w0rd", "p@ssw0rd", "password1", "Password1", "Password123",
    "Password@123", "passw0rd",
)

# The most common surnames (about half of the population between them) and given-name syllables, in Pinyin.
SURNAMES: tuple[str, ...] = (
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu", "hu",
    "guo", "he", "gao", "lin", "luo", "zheng", "liang", "xie", "song", "tang", "han", "feng", "deng", "cao",
    "peng", "zeng", "xiao", "tian", "dong", "yuan", "pan", "yu", "jiang", "cai", "jia", "ding", "wei", "xue",
    "ye", "yan", "lu", "du", "dai", "xia", "zhong",
)
GIVEN_NAMES: tuple[str, ...] = (
    "wei", "fang", "na", "min", "jing", "li", "qiang", "lei", "jun", "yang", "yong", "yan", "jie", "juan", "tao",
    "ming", "chao", "hui", "hua", "ping", "gang", "hong", "xia", "bin", "bo", "lin", "hao", "peng", "fei", "xin",
    "san", "si", "wu", "liu", "long", "jian", "dong", "tian", "yu", "xiaoming", "xiaohong", "jianguo", "guoqiang",
    "jianhua", "haiyan", "xiuying", "guiying", "yuying", "lijuan", "yanping",
)
_NAME_TAILS: tuple[str, ...] = ("", "123", "123456", "1234", "888", "666", "520", "1314", "@123", "88", "66",
                                "12345", "111", "000")


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _shapes(words: Sequence[str], year: int) -> list[str]:
    years = [str(y) for y in range(year, year - 8, -1)]
    out: list[str] = []
    for tail in _TAILS:  # the likeliest tails first, across all words
        for word in words:
            out += [word + tail, word[:1].upper() + word[1:] + tail]
    for y in years:
        for word in words:
            for fmt in _YEAR_TAILS:
                t = fmt.format(y=y)
                out += [word + t, word[:1].upper() + word[1:] + t]
    return out


def _names() -> list[str]:
    out: list[str] = []
    for tail in _NAME_TAILS:
        for surname in SURNAMES:
            for given in GIVEN_NAMES:
                out.append(f"{surname}{given}{tail}")
    return out


def _digits() -> list[str]:
    out: list[str] = []
    for d in "0123456789":
        for n in (6, 7, 8, 9, 10):
            out.append(d * n)
    for n in range(6, 11):
        out.append("".join(str(i % 10) for i in range(1, n + 1)))
        out.append("".join(str((10 - i) % 10) for i in range(1, n + 1)))
    picked = ("0101", "0520", "1001", "1111", "1212", "1314", "0808", "0909", "1010", "0606", "0618", "1225")
    for year in range(1960, 2006):
        out += [f"{year}{md}" for md in picked]
        out += [f"{year}{m:02d}01" for m in range(1, 13)]
    return out


# The placeholder names of every Chinese form and tutorial (张三, 李四, 王五 ...), used as passwords on accounts
# with other names: early, with the commonest tails.
_CLASSIC_NAMES = ("zhangsan", "lisi", "wangwu", "zhaoliu", "xiaoming", "xiaohong", "wangwei", "zhangwei", "liwei",
                  "wangfang", "lina", "liuyang", "zhangjie")


def generated_candidates(year: int) -> list[str]:
    """The generated tiers, ranked, deduplicated (about 40,000 candidates)."""
    vendor_words = ("huawei", "h3c", "ruijie", "sangfor", "hik", "dahua", "hillstone", "topsec", "nsfocus")
    return _dedupe([
        *VENDOR_DEFAULTS,
        *[name + tail for tail in _NAME_TAILS[:8] for name in _CLASSIC_NAMES],
        *_shapes(_WORDS[:8], year),  # the policy shapes of the commonest words first
        *_WALKS,
        *_shapes(_WORDS[8:] + vendor_words, year),
        *_names(),
        *_digits(),
    ])
