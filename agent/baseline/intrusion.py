"""入侵防范 (intrusion prevention): minimal install, unneeded services and high-risk ports, restricted management
access, known vulnerabilities (security updates, end of life), host intrusion detection."""

from __future__ import annotations

import re

from agent.baseline.host import HostView
from agent.baseline.model import CheckResult, CheckSpec, Thresholds

__all__ = ["CHECKS", "UNNEEDED_UNITS"]

# Services a township server rarely needs and assessors ask to switch off (unit -> what it is).
UNNEEDED_UNITS = {
    "telnet.socket": "telnet", "rsh.socket": "rsh", "rlogin.socket": "rlogin", "rexec.socket": "rexec",
    "tftp.socket": "tftp", "tftp.service": "tftp", "xinetd.service": "xinetd", "avahi-daemon.service": "avahi (mDNS)",
    "avahi-daemon.socket": "avahi (mDNS)", "cups.service": "打印服务 cups", "cups.socket": "打印服务 cups",
    "rpcbind.service": "rpcbind", "rpcbind.socket": "rpcbind", "nfs-server.service": "NFS 共享",
    "smb.service": "Samba 共享", "nmb.service": "Samba NetBIOS", "smbd.service": "Samba 共享",
    "nmbd.service": "Samba NetBIOS", "bluetooth.service": "蓝牙", "ypbind.service": "NIS",
    "vncserver@.service": "VNC", "snmpd.service": "SNMP",
}
_HIDS = ("wazuh-agentd", "ossec-agentd", "ossec-syscheckd", "wazuh-syscheckd", "samhain", "osqueryd", "falco",
         "AliYunDun", "YDService", "hostguard", "tripwire")
DAY = 86400


def minimal_install(host: HostView, th: Thresholds) -> CheckResult:
    evidence = []
    status = host.read("var/lib/dpkg/status")
    if status is not None:
        evidence.append(f"已安装 {status.count('Status: install ok installed')} 个 deb 软件包")
    tools = [t for t in ("usr/bin/gcc", "usr/bin/make", "usr/bin/nmap", "usr/bin/nc", "usr/bin/tcpdump")
             if host.exists(t)]
    if tools:
        evidence.append("装有开发或网络工具: " + ", ".join("/" + t for t in tools))
    return CheckResult("manual", evidence or ["是否“仅安装需要的组件”需结合业务判断"],
                       "人工确认已安装的软件均为业务所需, 卸载编译器、抓包与扫描工具等不需要的组件")


def unneeded_services(host: HostView, th: Thresholds) -> CheckResult:
    enabled = [(unit, what, host.unit_enabled(unit)) for unit, what in UNNEEDED_UNITS.items()]
    found = [f"{where}: {what} ({unit}) 开机启用" for unit, what, where in enabled if where]
    if found:
        units = " ".join(unit for unit, _, where in enabled if where)
        return CheckResult("fail", found, f"确认业务不需要后停用: systemctl disable --now {units}")
    return CheckResult("pass", [f"检查了 {len(UNNEEDED_UNITS)} 个常见的多余服务, 均未启用"])


def high_risk_ports(host: HostView, th: Thresholds) -> CheckResult:
    exposure = host.peer("exposure")
    if exposure is None:
        return CheckResult("manual", ["端口暴露检查 (exposure) 尚无结果"], "启用 collectors.exposure")
    ports = [f"端口 {s.label('port')} ({s.label('service')}, {s.label('process')}) 监听在所有地址"
             for s in exposure.samples("shaobing_exposed_port") if s.value]
    firewall = exposure.get("shaobing_host_firewall_active")
    evidence = ports + ([f"主机防火墙: {'启用' if firewall else '未启用'}"] if firewall is not None else [])
    if ports:
        return CheckResult("fail", evidence,
            "高危端口只监听在内网地址或 127.0.0.1, 或用防火墙限制来源; 详见 shaobing scan "
                                             "的“端口暴露与防火墙”一节")
    return CheckResult("pass", evidence or ["未发现对所有地址开放的高危服务端口"])


def management_restricted(host: HostView, th: Thresholds) -> CheckResult:
    if not host.exists("etc/ssh/sshd_config"):
        return CheckResult("not_applicable", ["未安装 sshd: 没有网络远程管理入口 (telnet 等由“远程管理防窃听”检查)"])
    evidence = []
    for key, value, where in host.sshd_config:
        if key == "listenaddress" and value.split(":")[0] not in ("0.0.0.0", "::", "[::]", "*"):
            evidence.append(f"{where}: ListenAddress {value}")
        elif key in ("allowusers", "allowgroups") and "@" in value:
            evidence.append(f"{where}: {key} {value} (按来源地址限制)")
        elif key == "match" and re.search(r"\baddress\b", value, re.I):
            evidence.append(f"{where}: Match {value}")
    allow = [(w, t) for w, t in host.lines("etc/hosts.allow") if re.match(r"(sshd|ALL)\s*:", t)]
    deny_all = any(re.match(r"(sshd|ALL)\s*:\s*ALL\b", t) for _, t in host.lines("etc/hosts.deny"))
    if allow and deny_all:
        evidence += [f"{w}: {t}" for w, t in allow] + ["/etc/hosts.deny: 其余来源拒绝"]
    evidence += _firewall_sources(host)
    if evidence:
        return CheckResult("pass", evidence)
    return CheckResult("fail", ["SSH 管理端口对任何来源地址开放 (sshd、hosts.allow、防火墙均未限制来源)"],
                       "只允许运维终端的地址: firewall-cmd --permanent --add-rich-rule='rule family=ipv4 source "
                       "address=<运维网段> service name=ssh accept' 并移除 ssh 服务; 或在 sshd_config 设置 "
                       "AllowUsers 用户@<地址>")


def _firewall_sources(host: HostView) -> list[str]:
    out = []
    for path in host.glob("etc/firewalld/zones/*.xml"):
        text = host.read(path) or ""
        if re.search(r"<source\s+address=", text) or re.search(r"<rule[^>]*>\s*<source\s+address=[^>]*/>\s*"
                                                                r"<service\s+name=\"ssh\"", text):
            out.append(f"{host.shown(path)}: firewalld 区域按来源地址限制")
    for rel in ("etc/sysconfig/iptables", "etc/iptables/rules.v4", "etc/iptables.rules"):
        for where, line in host.lines(rel):
            if re.search(r"-s\s+\S+.*--dport\s+22\b.*-j\s+ACCEPT", line):
                out.append(f"{where}: {line}")
    for where, line in host.lines("etc/nftables.conf"):
        if re.search(r"saddr\s+\S+.*dport\s+(22|ssh)\b.*accept", line):
            out.append(f"{where}: {line}")
    return out


def security_updates(host: HostView, th: Thresholds) -> CheckResult:
    updates = host.peer("updates")
    if updates is None:
        return CheckResult("manual", ["更新检查 (updates) 尚无结果"], "启用 collectors.updates")
    supported = updates.get("shaobing_security_updates_supported")
    pending = updates.get("shaobing_security_updates_pending")
    if not supported or pending is None:
        return CheckResult("manual", ["本系统的软件源不提供安全公告数据, 无法区分安全更新 (如 CentOS 7)"],
                           "人工核对厂商安全公告, 或改用提供安全公告的软件源")
    if pending > 0:
        return CheckResult("fail", [f"有 {int(pending)} 个安全更新待安装"],
                           "测试后安装安全更新 (apt-get upgrade / yum update --security), 必要时重启")
    return CheckResult("pass", ["没有待安装的安全更新"])


def os_supported(host: HostView, th: Thresholds) -> CheckResult:
    versions = host.peer("versions")
    if versions is None:
        return CheckResult("manual", ["版本检查 (versions) 尚无结果"], "启用 collectors.versions")
    eol = [s for s in versions.samples("shaobing_eol_timestamp_seconds") if s.label("kind") == "os"]
    if not eol:
        return CheckResult("manual", ["没有本系统的停止支持日期"], "人工确认操作系统仍在厂商支持期内")
    s = eol[0]
    name = f"{s.label('product')} {s.label('cycle')}"
    if s.value < host.now:
        return CheckResult("fail", [f"{name} 已于 {int((host.now - s.value) // DAY)} 天前停止支持, 不再有安全修补"],
                           "制定迁移计划, 升级到仍受支持的版本 (见 shaobing scan 的“版本与生命周期”一节)")
    return CheckResult("pass", [f"{name} 仍受支持, 还有 {int((s.value - host.now) // DAY)} 天"])


def intrusion_detection(host: HostView, th: Thresholds) -> CheckResult:
    running = host.running(*_HIDS)
    if running:
        return CheckResult("pass", [f"主机入侵检测 {', '.join(running)} 正在运行"])
    aide_db = host.glob("var/lib/aide/aide.db*")
    scheduled = [p for p in ("etc/cron.daily/aide", "etc/cron.d/aide", "etc/cron.daily/dailyaidecheck")
                 if host.exists(p)]
    timer = host.unit_enabled("dailyaidecheck.timer") or host.unit_enabled("aidecheck.timer")
    if timer:
        scheduled.append(timer)
    if aide_db and scheduled:
        return CheckResult("pass",
            [f"AIDE 完整性检查: 数据库 {host.shown(aide_db[0])}, 定时任务 /{scheduled[0].lstrip('/')}"])
    evidence = ["主机上未发现入侵检测 (Wazuh/OSSEC、osquery、AIDE 定时检查、云主机安全代理)"]
    if aide_db:
        evidence.append("AIDE 数据库存在, 但没有定时检查")
    return CheckResult("manual", evidence, "若由网络入侵检测或态势感知平台提供, 请人工确认; 否则部署 AIDE 定时检查 "
                                          "(apt install aide / yum install aide, aideinit) 或主机安全代理")


CHECKS = (
    CheckSpec("minimal_install", "intrusion", "a", (2, 3), "最小安装原则", minimal_install),
    CheckSpec("unneeded_services", "intrusion", "b", (2, 3), "关闭不需要的系统服务", unneeded_services),
    CheckSpec("high_risk_ports", "intrusion", "b", (2, 3), "关闭高危端口 (不对所有地址开放)", high_risk_ports),
    CheckSpec("management_restricted", "intrusion", "c", (2, 3), "限制管理终端的接入地址", management_restricted),
    CheckSpec("security_updates", "intrusion", "e", (2, 3), "及时修补已知漏洞 (安全更新)", security_updates),
    CheckSpec("os_supported", "intrusion", "e", (2, 3), "操作系统仍在支持期内 (能获得漏洞修补)", os_supported),
    CheckSpec("intrusion_detection", "intrusion", "f", (3,), "能检测入侵行为并报警", intrusion_detection),
)
