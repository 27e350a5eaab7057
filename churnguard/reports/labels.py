"""Every label of the churn report in English and Chinese (zh-CN), with the GLOSSARY's terms.

``text(key, lang, **values)`` returns the label in ``lang`` with ``values`` formatted in; a
missing key raises ``KeyError`` (a test renders both languages, so a forgotten label fails
there, not in front of a reader).
"""

from __future__ import annotations

from churnguard.reasons import REASONS

LANGS = ("en", "zh")

LABELS: dict[str, tuple[str, str]] = {
    # key: (en, zh)
    "title": ("Periodic churn report", "阶段性客户流失情况总结与分析报告"),
    "subtitle": ("{scope} · {start} to {end}", "{scope} · {start} 至 {end}"),
    "compared_with": ("compared with {start} to {end}", "对比期:{start} 至 {end}"),
    "contents": ("Contents", "目录"),
    "no_data": ("No data for this period.", "本期无数据。"),
    "no_children": (
        "{name} has no branches below it: every figure in this report is {name}'s own.",
        "{name}没有下级机构:本报告的数字均为{name}本身的数字。",
    ),
    "provisional": (
        "Churn after {settled} is final only where a recorded churn event confirms it: a subscription that ended "
        "in the last {grace} days before the as-of date ({as_of}) without one may still be renewed within the grace "
        "period, so it counts as active for now.",
        "{settled} 之后的流失仅在有流失记录确认时计入:数据截止日({as_of})前 {grace} 天内到期且无流失记录的订阅"
        "仍可能在宽限期内续约,暂按在网客户计算。",
    ),
    "print": ("Print", "打印"),
    "data_note": ("Data note", "数据提示"),
    "expand_all": ("Expand all", "全部展开"),
    # sections
    "sec_summary": ("Summary", "总结"),
    "sec_headline": ("Headline figures", "核心指标"),
    "sec_branches": ("Churn by branch", "分支机构流失情况"),
    "sec_trend": ("Churn rate per period", "各期客户流失率"),
    "sec_reasons": ("Churn reasons and destinations", "流失原因与客户去向"),
    "sec_key_accounts": ("Key accounts lost", "大客户流失"),
    "sec_value": ("Customer value", "客户价值"),
    "sec_loss": ("Churn loss in money", "客户流失损失"),
    "sec_cohorts": ("Cohort retention", "客户群组留存"),
    "sec_survival": ("Survival and customer lifetime", "客户生存曲线与平均生命周期"),
    "sec_implicit": ("Implicit churn", "隐性流失"),
    "sec_alerts": ("Alerts", "流失预警提示"),
    "sec_at_risk": ("Top at-risk customers", "高流失风险客户"),
    "sec_source": ("Data source", "数据来源"),
    # headline
    "start_customers": ("Customers at start", "期初客户数"),
    "new_customers": ("New customers", "新增客户数"),
    "reactivated_customers": ("Reactivated", "回流客户数"),
    "new_reactivated": ("New (incl. reactivated)", "新增(含回流)"),
    "churned_customers": ("Churned customers", "流失客户数"),
    "end_customers": ("Customers at end", "期末客户数"),
    "churn_rate": ("Churn rate", "客户流失率"),
    "retention_rate": ("Retention rate", "客户保留率"),
    "churn_rate_change": ("Churn-rate change", "流失变动率"),
    "lost_revenue": ("Lost revenue", "流失收入"),
    "profit_loss": ("Churn loss (profit)", "客户流失损失(利润)"),
    "grr": ("Gross revenue retention", "总收入留存率(GRR)"),
    "nrr": ("Net revenue retention", "净收入留存率(NRR)"),
    "previous": ("Previous period", "上期"),
    "vs_previous": ("previous {value}", "上期 {value}"),
    "relative": ("{value} relative", "相对 {value}"),
    "kpi_churn_change_note": ("this period's rate − the previous period's", "本期流失率 − 上期流失率"),
    # summary sentences
    "sum_churn": (
        "{churned} customers churned; {from_start} of the {start} customers at the start left: a churn rate of "
        "{rate} ({change} against the previous period, {prev}).",
        "本期流失客户 {churned} 户,其中期初客户 {start} 户中流失 {from_start} 户,客户流失率 {rate}"
        "(较上期 {prev} 变动 {change})。",
    ),
    "sum_churn_no_previous": (
        "{churned} customers churned; {from_start} of the {start} customers at the start left: a churn rate of "
        "{rate} (no rate for the previous period).",
        "本期流失客户 {churned} 户,其中期初客户 {start} 户中流失 {from_start} 户,客户流失率 {rate}(上期无流失率数据)。",
    ),
    "kpi_rate_note": ("{from_start} of {start} at the start left", "期初 {start} 户中流失 {from_start} 户"),
    "sum_base": (
        "The customer base went from {start} to {end} ({new} new, {react} reactivated).",
        "客户数由期初 {start} 变为期末 {end}(新增 {new},回流 {react})。",
    ),
    "sum_branch": (
        "Highest churn: {name} at {rate}; lowest: {low_name} at {low_rate}.",
        "流失率最高:{name}({rate});最低:{low_name}({low_rate})。",
    ),
    "sum_reason": (
        "Leading reason: {reason} ({share} of the churned); leading destination: {dest} ({dshare}).",
        "首要流失原因:{reason}(占流失客户 {share});主要去向:{dest}({dshare})。",
    ),
    "sum_reason_only": (
        "Leading reason: {reason} ({share} of the churned).",
        "首要流失原因:{reason}(占流失客户 {share})。",
    ),
    "sum_loss": (
        "Lost revenue {revenue}; churn loss (profit) {profit}.",
        "流失收入 {revenue};客户流失损失(利润){profit}。",
    ),
    "sum_alerts": ("{n} alerts were raised (see Alerts).", "共触发 {n} 条流失预警(见“流失预警提示”)。"),
    # branch table
    "branch": ("Branch", "分支机构"),
    "direct_customers": ("{name} (customers attached directly)", "{name}(直属客户)"),
    "drill_down": ("Drill-down: each branch's own branches", "逐级下钻:各分支机构的下级机构"),
    "children_of": ("{name}: {n} branches", "{name}:下辖 {n} 个机构"),
    "prev_rate": ("Previous rate", "上期流失率"),
    "branch_chart": ("Churn rate by branch", "各分支机构客户流失率"),
    "other_branches": ("The other {n} branches (the smaller ones)", "其余 {n} 个机构(规模较小)"),
    "largest_of": ("(the {n} largest of {total})", "(规模最大的 {n} 个,共 {total} 个)"),
    "scope_average": ("{name} overall", "{name}整体"),
    # trend
    "trend_chart": ("Churn rate per {period}", "各{period}客户流失率"),
    "period_month": ("month", "月"),
    "period_quarter": ("quarter", "季度"),
    "this_range": ("Report period", "本报告期"),
    "previous_range": ("Previous period", "上一期"),
    "period": ("Period", "期间"),
    "trend_table": ("Figures per period", "各期数据"),
    # reasons
    "reason": ("Reason", "流失原因"),
    "share_of_loss": ("Share of the loss", "占流失收入比例"),
    "partial_period": (
        "* only part of this {period} lies in the report period.",
        "* 该{period}仅部分月份在报告期内。",
    ),
    "reasons_chart": ("Churn by reason", "按流失原因"),
    "destinations_chart": ("Where churned customers went", "流失客户去向"),
    "reason_mix_chart": ("Reason mix per {period}", "各{period}流失原因构成"),
    "unknown": ("(unknown)", "(未知)"),
    "no_destination": ("(none recorded)", "(未记录)"),
    # key accounts
    "ka_flagged": (
        "Key accounts: customers flagged VIP or A tier ({n} in all).",
        "大客户:标记为 VIP 或 A 类的客户(共 {n} 户)。",
    ),
    "ka_top_share": (
        "Key accounts: the top {share} of customers by revenue in the 12 months before {date} ({n} in all).",
        "大客户:{date} 前 12 个月收入排名前 {share} 的客户(共 {n} 户)。",
    ),
    "ka_others": ("other customers: {rate}", "其他客户:{rate}"),
    "ka_customers": ("Key accounts at start", "期初大客户数"),
    "ka_churned": ("Key accounts lost", "流失大客户数"),
    "ka_rate": ("Key-account churn rate", "大客户流失率"),
    "ka_revenue": ("Revenue lost with them", "大客户流失收入"),
    "ka_list": ("Key accounts lost", "流失大客户名单"),
    # customer value
    "value_missing": (
        "Customer value is not computed yet: run `churnguard segment run` (ABC tiers, RFM, lifecycle) and "
        "`churnguard clv score` (CLV) to store it in customer_value; this section then shows it.",
        "尚未计算客户价值:运行 `churnguard segment run`(ABC 分类、RFM、生命周期)和 `churnguard clv score`(CLV)"
        "写入 customer_value 表后,本节即显示相应内容。",
    ),
    "value_stored": (
        "Values as stored in customer_value on {as_of} (company-wide tiers and RFM scores), for the customers in "
        "scope; value share: trailing value for tiers, revenue in the RFM window for segments. Churn rate by tier: "
        "in the report period, by each customer's current tier.",
        "取自 customer_value 表({as_of} 计算;价值等级与 RFM 评分为全公司口径),仅统计本范围内客户;"
        "价值占比:价值等级按近期价值,RFM 分群按窗口期内收入。各等级流失率为本报告期数据,按客户当前等级归类。",
    ),
    "value_tiers": ("ABC value tiers", "ABC 客户价值分类"),
    "value_tiers_chart": ("ABC tiers: share of customers and of value", "ABC 分类:客户占比与价值占比"),
    "value_rfm_chart": ("RFM segments: share of customers and of value", "RFM 客户分群:客户占比与价值占比"),
    "value_stages_chart": ("Customers per lifecycle stage", "各生命周期阶段客户数"),
    "share_customers": ("Share of customers", "客户占比"),
    "share_value": ("Share of value", "价值占比"),
    "customers_n": ("Customers", "客户数"),
    "rfm_segment": ("RFM segment", "RFM 分群"),
    "stage": ("Lifecycle stage", "生命周期阶段"),
    "tier_churn_rate": ("Churn rate (period)", "本期流失率"),
    "clv_total": ("Total CLV", "CLV 合计"),
    "clv_mean": ("Mean CLV", "平均 CLV"),
    "clv_by_tier": ("Customer lifetime value (CLV) by tier", "各价值等级客户终身价值(CLV)"),
    "holdout_title": ("BG/NBD model check on a holdout period", "BG/NBD 模型留出期检验"),
    "holdout_chart": (
        "Repeat purchases in the holdout per customer, by purchases in the calibration period",
        "留出期人均重复购买次数(按校准期购买次数分组)",
    ),
    "holdout_x": ("Repeat purchases in the calibration period", "校准期重复购买次数"),
    "holdout_y": ("Mean repeat purchases in the holdout", "留出期人均重复购买次数"),
    "holdout_actual": ("Actual", "实际"),
    "holdout_predicted": ("Predicted (BG/NBD)", "预测(BG/NBD)"),
    "holdout_predicted_total": ("Predicted repeat purchases", "预测重复购买次数"),
    "holdout_actual_total": ("Actual repeat purchases", "实际重复购买次数"),
    "holdout_error": ("Forecast error", "预测误差"),
    "holdout_customers": ("Customers", "客户数"),
    "holdout_note": (
        "BG/NBD fitted on all purchases up to {cal_end} (calibration), its forecast compared with the repeat "
        "purchase days from {hold_from} to {hold_to} (holdout, {weeks} weeks), for the whole store. "
        "The calibration ends the day before the report period{fallback}.",
        "以 {cal_end} 及之前的全部购买记录(校准期)拟合 BG/NBD 模型,将其预测与 {hold_from} 至 {hold_to}"
        "(留出期,{weeks} 周)实际发生的重复购买天数对比,统计范围为全部数据。校准期截至报告期开始前一日{fallback}。",
    ),
    "holdout_fallback": (
        " — here that left less than 8 weeks of holdout, so it ends in the middle of the data instead",
        "——此处留出期将不足 8 周,故改为截至数据区间的中点",
    ),
    # loss
    "customer": ("Customer", "客户"),
    "churn_date": ("Churn date", "流失日期"),
    "plan": ("Plan", "套餐"),
    "segment": ("Segment", "客户类型"),
    "margin": ("Margin", "利润率"),
    "margin_note": (
        "Lost revenue: each churned customer's revenue in the {window} months before churn; "
        "churn loss = lost revenue × margin ({margin}, {source}).",
        "流失收入:每位流失客户流失前 {window} 个月的收入;客户流失损失 = 流失收入 × 利润率({margin},{source})。",
    ),
    "margin_src_option": ("given", "人工指定"),
    "margin_src_data": ("from the transactions' margin", "取自交易利润数据"),
    "margin_src_default": ("default", "默认值"),
    "loss_by_branch": ("Churn loss by branch", "各分支机构流失损失"),
    "top_lost": ("Top lost customers by revenue", "流失收入最高的客户"),
    "revenue_movements": ("Recurring revenue movements", "经常性收入变动"),
    "mrr_start": ("MRR at start", "期初月经常性收入"),
    "mrr_end": ("MRR at end", "期末月经常性收入"),
    "mv_new": ("New", "新增"),
    "mv_expansion": ("Expansion", "扩展"),
    "mv_contraction": ("Contraction", "收缩"),
    "mv_churned": ("Churned", "流失"),
    "mv_reactivation": ("Reactivation", "回流"),
    # cohorts
    "cohort": ("Signup cohort", "签约群组"),
    "age_month": ("Months since signup", "签约后月数"),
    "age_quarter": ("Quarters since signup", "签约后季度数"),
    "cohort_chart": ("Share of each signup cohort still a customer", "各签约群组的客户留存比例"),
    "average_retention": ("Average retention curve", "平均留存曲线"),
    # survival
    "survival_chart": ("Kaplan–Meier survival by segment", "按客户类型的 Kaplan–Meier 生存曲线"),
    "group": ("Group", "分组"),
    "n": ("Customers", "客户数"),
    "events": ("Churned", "已流失"),
    "median_lifetime": ("Median lifetime", "中位生命周期"),
    "mean_lifetime": ("Restricted mean lifetime", "平均生命周期(限定均值)"),
    "survival_y": ("Share still a customer", "仍为客户的比例"),
    "tenure_months": ("Months since signup", "签约后月数"),
    "not_reached": ("not reached", "未达到"),
    "months_value": ("{value} months", "{value} 个月"),
    "survival_note": (
        "Median: the time by which half the customers had churned; restricted mean: the average lifetime "
        "within the observed horizon ({horizon}).",
        "中位生命周期:半数客户流失所需时间;限定均值:在观察期({horizon})内的平均生命周期。",
    ),
    # implicit
    "implicit_count": ("Implicit churners", "隐性流失客户数"),
    "implicit_share": ("Share of judged customers", "占可判定客户比例"),
    "implicit_judged": ("Active customers judged", "可判定的在网客户数"),
    "implicit_note": (
        "Customers still active whose activity ({source} per 30 days) in {recent} fell by more than {threshold} "
        "against their own baseline in {baseline}; customers too new or too quiet for a baseline are not judged.",
        "仍在网、但 {recent} 的活跃度(每 30 天 {source} 记录数)较自身基线期 {baseline} 下降超过 {threshold} 的客户;"
        "新客户或基线期几乎无活动的客户不作判定。",
    ),
    "baseline": ("Baseline (per 30 days)", "基线(每 30 天)"),
    "recent": ("Recent (per 30 days)", "近期(每 30 天)"),
    "drop": ("Change", "变化"),
    "implicit_list": ("Largest drops", "降幅最大的客户"),
    # alerts
    "no_alerts": ("No alerts in this period.", "本期无预警。"),
    "alert_criteria": (
        "An alert flags a branch (with at least {n} customers at the start) whose churn rate in a {period} rose "
        "by more than {pp} and more than {rel} against its previous {period}.",
        "预警规则:期初客户数不少于 {n} 户的分支机构,某{period}客户流失率较上{period}上升超过 {pp}"
        "且相对上升超过 {rel}。",
    ),
    "alert_ceiling": ("Or whose rate exceeds the ceiling of {ceiling}.", "或流失率超过最低标准 {ceiling}。"),
    "sev_high": ("high", "高"),
    "sev_medium": ("medium", "中"),
    "sev_low": ("low", "低"),
    # at-risk
    "scores_missing": (
        "Early-warning scores are not computed yet: once a churn model scores the customers "
        "(table scores), this section lists the customers most likely to churn.",
        "尚未计算流失预警得分:当流失预警模型为客户打分(scores 表)后,本节将列出流失可能性最高的客户。",
    ),
    "probability": ("Churn probability", "流失概率"),
    "scored_at": ("Scored on", "评分日期"),
    "top_reasons": ("Likely reasons", "可能原因"),
    "tier": ("Value tier", "价值等级"),
    # source
    "src_store": ("Store", "数据存储"),
    "src_as_of": ("Data as of", "数据截止日"),
    "src_definition": ("Churn definition", "流失定义"),
    "src_rate": ("Churn rate", "流失率口径"),
    "src_rate_text": (
        "customers lost in the period among those at its start ÷ customers at its start; "
        "churn-rate change = this period's rate − the previous period's (pp: percentage points)",
        "期内流失的期初客户数 ÷ 期初客户数;流失变动率 = 本期流失率 − 上期流失率(pp:百分点)",
    ),
    "src_contractual": (
        "contractual: a customer churns on the day their last subscription ends with no renewal within {grace} days",
        "契约型:客户最后一份订阅到期且 {grace} 天内未续约,即于到期日计为流失",
    ),
    "src_non_contractual": (
        "non-contractual: a customer churns after {days} days without activity (table {table})",
        "非契约型:客户连续 {days} 天无活动({table} 表)即计为流失",
    ),
    "src_generated": ("Generated", "生成时间"),
    "src_version": ("Software", "软件版本"),
    "src_scope": ("Scope", "范围"),
    "src_periods": ("Periods", "统计期"),
    "whole_company": ("whole company", "全公司"),
}


def text(key: str, lang: str = "en", **values: object) -> str:
    """The label ``key`` in ``lang`` (``en`` or ``zh``), with ``values`` formatted in."""
    en, zh = LABELS[key]
    template = zh if lang.startswith("zh") else en
    return template.format(**values) if values else template


def reason_label(code: str | None, lang: str = "en") -> str:
    """The reason's label from the taxonomy; unknown codes as they are, empty as "(unknown)"."""
    if code is None or code in ("", "(unknown)"):
        return text("unknown", lang)
    for r in REASONS:
        if r.code == code:
            return r.label(lang)
    return code
