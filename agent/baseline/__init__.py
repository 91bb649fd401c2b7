"""The 等保 2.0 self-check: Linux host checks mapped to GB/T 22239-2019 安全计算环境 (level 2 and 3).

``clauses`` is the catalogue (clause numbers and requirement text per level); one module per clause family
holds its checks (``identity`` 身份鉴别, ``access`` 访问控制, ``auditing`` 安全审计, ``intrusion`` 入侵防范,
``malware`` 恶意代码防范, ``privacy`` 个人信息保护); ``engine`` runs them for a level and scores the clauses;
``render`` writes the Chinese report and the JSON. Every check reads files under a root (a fixture tree in
tests) and returns pass / fail / manual / not applicable with its evidence (file:line) and a fix in Chinese.
It is a self-check (自查) that prepares an assessment, not a certification.
"""
