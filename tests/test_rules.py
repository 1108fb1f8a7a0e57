"""Site rules on local pages built like each publisher's article page (tests/pages):
the rule picks the article body and drops that site's boilerplate (QR codes,
责任编辑, share bars, ads, related links)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from scraper.extractor import extract
from scraper.rules import RULES

PAGES = Path(__file__).parent / "pages"


@dataclass(frozen=True)
class Case:
    rule: str  # the RULES key; the page is tests/pages/<rule>.html
    url: str  # where such a page lives (its host picks the rule)
    keep: tuple[str, ...]  # article text a reader expects, first and last paragraphs
    drop: tuple[str, ...]  # boilerplate that must be gone from the text and the HTML


CASES = [
    Case("sina.com.cn", "https://finance.sina.com.cn/roll/2024-01-24/doc-inaesrsh4711111.shtml",
         ("新浪财经讯 中国人民银行决定", "营造良好的货币金融环境"),
         ("责任编辑", "海量资讯", "appendqr.png", "新浪广告位", "相关个股", "相关阅读", "分享到",
          "版权所有")),
    Case("sina.cn", "https://finance.sina.cn/2024-02-05/detail-inafxyzu1234567.d.html",
         ("三大指数集体拉升", "北向资金净买入超50亿元"),
         ("展开全文", "扫码下载", "+关注", "分享到", "版权所有")),
    Case("yicai.com", "https://www.yicai.com/news/101972345.html",
         ("1月财新中国制造业采购经理指数", "继续加大逆周期调节力度"),
         ("责编", "分享到", "举报", "相关阅读", "版权所有")),
    Case("stcn.com", "https://www.stcn.com/article/detail/1112345.html",
         ("证券时报e公司讯", "中标额6962万元"),
         ("责任编辑", "分享", "声明", "为你推荐", "版权所有")),
    Case("eastmoney.com", "https://finance.eastmoney.com/a/202401022951234567.html",
         ("1月2日晚间公告", "完成了年度经营目标"),
         ("东方财富APP", "文章来源", "责任编辑", "郑重声明", "分享到", "摘要")),
    Case("gelonghui.com", "https://www.gelonghui.com/p/712345",
         ("港股三大指数集体收涨", "南向资金全天净买入"),
         ("分享到", "本文为格隆汇原创", "免责声明", "热门文章")),
    Case("wallstreetcn.com", "https://wallstreetcn.com/articles/3707123",
         ("连续第四次会议维持", "美元指数走强"),
         ("解锁全文", "分享到", "二维码", "相关文章")),
    Case("jin10.com", "https://xnews.jin10.com/details/123456",
         ("国际油价周一下跌，WTI", "压制了油价表现"),
         ("分享到", "qrcode.png", "扫码下载", "版权所有")),
    Case("fx678.com", "https://news.fx678.com/202402052340111111.shtml",
         ("现货黄金周一收跌逾1%", "美国服务业数据"),
         ("扫描二维码", "ewm.png", "相关新闻")),
    Case("zhitongcaijing.com", "https://www.zhitongcaijing.com/content/detail/1071234.html",
         ("智通财经APP获悉，小米集团", "毛利率有望维持"),
         ("扫码关注", "qrcode.png", "免责声明", "版权所有")),
    Case("xueqiu.com", "https://xueqiu.com/1234567890/277123456",
         ("高股息资产持续跑赢大盘", "个股之间的分化"),
         ("风险提示", "分享", "全部评论", "说得好")),
    Case("chinamoney.com.cn",
         "https://www.chinamoney.com.cn/chinese/scggbbscrtzgg/20240205/2924567.html",
         ("5910亿元逆回购操作", "实现净投放2910亿元"),
         ("打印", "关闭窗口", "版权所有")),
    Case("csrc.gov.cn", "http://www.csrc.gov.cn/csrc/c100028/c7461234/content.shtml",
         ("推动上市公司提升投资价值", "《指引》自公布之日起施行"),
         ("分享到", "版权所有", "新闻发布")),
    Case("investor.gov.cn",
         "https://www.investor.gov.cn/information_release/news_release_from_authorities/"
         "zjhfb/202402/t20240205_471234.shtml",
         ("依法对某上市公司财务造假案", "切实保护投资者合法权益"),
         ("文章来源", "打印本页", "版权所有")),
    Case("hexun.com", "https://stock.hexun.com/2024-02-05/211234567.html",
         ("交通一体化建设各项工作取得积极成效", "1.5小时交通圈"),
         ("责任编辑", "打开和讯APP", "data:image", "版权所有")),
    Case("163.com", "https://www.163.com/money/article/IR1234567800258105.html",
         ("经过三年狂奔，龙湖集团", "亟待规范的乱象"),
         ("分享到", "网易广告", "本文来源", "责任编辑", "跟贴", "举报")),
    Case("news.cn", "http://www.news.cn/fortune/2023-11/17/c_1129981476.htm",
         ("新华社北京11月17日电", "开展动态监测与分析预警"),
         ("纠错", "责任编辑", "扫一扫", "阅读下一篇", "All Rights Reserved")),
    Case("xinhuanet.com", "http://www.xinhuanet.com/fortune/2019-10/07/c_1125075234.htm",
         ("新华社北京10月7日电", "外汇市场供求基本平衡"),
         ("纠错", "责任编辑", "分享到", "版权所有")),
    Case("chinadaily.com.cn",
         "https://china.chinadaily.com.cn/a/202311/17/WS65571297a310d5acd876f404.html",
         ("中美元首会晤吸引了全世界的目光", "中美合作共赢是大势所趋", "（编辑：严玉洁 王辉）"),
         ("责任编辑", "分享到", "download.jpg", "相关文章", "版权所有")),
    Case("cnbc.com", "https://www.cnbc.com/2024/01/31/fed-rate-decision-january-2024.html",
         ("held its key interest rate steady", "Markets react",
          "probably not the base case"),
         ("Getty Images", "watch now", "VIDEO", "S&amp;P 500 INDEX", "Job openings",
          "Subscribe to CNBC PRO", "Key Points", "All Rights Reserved")),
    Case("nytimes.com", "https://www.nytimes.com/2024/01/31/business/economy/fed-rates.html",
         ("left interest rates unchanged on Wednesday", "markets slipped"),
         ("Advertisement", "Dealbook", "Listen to this article", "Comments", "© 2024")),
    Case("federalreserve.gov",
         "https://www.federalreserve.gov/newsevents/pressreleases/monetary20240131a.htm",
         ("economic activity has been expanding", "media@frb.gov"),
         ("For release at", "Share", "Print", "Last Update", "Monetary Policy")),
    Case("sec.gov", "https://www.sec.gov/news/press-release/2024-17",
         ("Washington D.C., Feb. 5, 2024", "Division of Enforcement"),
         ("Share on Twitter", "Related Materials", "Newsroom")),
    Case("ecb.europa.eu",
         "https://www.ecb.europa.eu/press/pr/date/2024/html/ecb.mp240125~f738b4e24c.en.html",
         ("keep the three key ECB interest rates unchanged", "during the first half of 2024"),
         ("25 January 2024", "For media queries", "Related topics", "Deutsch")),
    Case("bankofengland.co.uk",
         "https://www.bankofengland.co.uk/monetary-policy-summary-and-minutes/2024/february-2024",
         ("sets monetary policy to meet the 2% inflation target", "Twelve-month CPI inflation"),
         ("Share on Twitter", "Related links", "Published on", "© Bank of England")),
    Case("boj.or.jp", "https://www.boj.or.jp/en/mopo/mpmdeci/mpr_2024/k240123a.htm",
         ("Policy Board of the Bank of Japan decided", "remain at around zero percent"),
         ("Share on X", "Page Top", "Monetary Policy</a>", "Copyright")),
    Case("bis.org", "https://www.bis.org/review/r240205a.htm",
         ("Speech by Mr John Smith", "foundation of sustainable growth"),
         ("Share", "Central bank speeches", "©")),
    Case("cftc.gov", "https://www.cftc.gov/PressRoom/PressReleases/8850-24",
         ("Washington, D.C. — The Commodity Futures Trading Commission", "cease and desist"),
         ("Share", "Press Room", "Release Number")),
    Case("fca.org.uk", "https://www.fca.org.uk/news/press-releases/fca-fines-bank-crime-controls",
         ("fined a bank for serious weaknesses", "Notes to editors"),
         ("Share on LinkedIn", "First published", "© Financial Conduct Authority")),
    Case("marketwatch.com",
         "https://www.marketwatch.com/story/stocks-close-lower-after-powell-dampens-hopes-1a2b3c",
         ("U.S. stocks closed lower on Monday", "biggest one-day gain since September"),
         ("Read: Powell says", "Advertisement", "Most Popular", "By Joy Wiltermuth")),
    Case("ft.com", "https://www.ft.com/content/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
         ("left interest rates unchanged for a fourth consecutive meeting",
          "recovered as Jay Powell spoke"),
         ("Advertisement", "Recommended", "last mile problem", "FINANCIAL TIMES LTD")),
    Case("reuters.com",
         "https://www.reuters.com/business/energy/oil-prices-fall-ceasefire-talks-2024-02-05/",
         ("Oil prices fell on Monday", "Editing by David Gregorio"),
         ("Share", "Reuters Graphics", "Read Next", "Trust Principles", "All rights reserved")),
]


def test_every_rule_has_a_page() -> None:
    assert {case.rule for case in CASES} == set(RULES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.rule)
def test_rule_takes_the_body_without_boilerplate(case: Case) -> None:
    got = extract((PAGES / f"{case.rule}.html").read_bytes(), case.url)
    assert got.method == f"rule:{case.rule}"
    assert "<p>" in got.html  # the body stays HTML
    for phrase in case.keep:
        assert phrase in got.text
    for junk in case.drop:
        assert junk not in got.text, junk
        assert junk not in got.html, junk


def test_responsible_editor_line_goes_but_the_story_credit_stays() -> None:
    """The CMS's "【责任编辑：…】" is page furniture; the "（编辑：…）" closing the
    story is part of it, as "Editing by …" is in English wire copy."""
    got = extract((PAGES / "chinadaily.com.cn.html").read_bytes(),
                  "https://china.chinadaily.com.cn/a/202311/17/WS1.html")
    assert got.text.splitlines()[-1] == "（编辑：严玉洁 王辉）"
