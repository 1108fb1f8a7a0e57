"""Site rules: where the article body sits on a publisher's page, and what to cut.

Matched on the host of the page's final URL (after redirects): a rule for
`sina.com.cn` covers `finance.sina.com.cn` too. Each rule lists CSS selectors
for the body (first one that matches with enough text wins), selectors for
boilerplate inside it, and text patterns: a block (`p`, `div`, ...) whose text
matches one of them is removed (e.g. "责任编辑：..."). Pages where no selector
matches fall through to the generic extractor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["RULES", "Rule", "rule_for"]

# Boilerplate common to many Chinese portals.
_ZH_BOILER = (
    "script", "style", "iframe", "ins", ".share", ".bdsharebuttonbox", "[class*=qrcode]",
    "[class*=qr_code]", "[class*=Qr]", "[class*=ewm]", "[id*=ad_]", "[class*=adv]",
)
# The CMS's "责任编辑" (responsible editor) line, bracketed or not, is page
# furniture; an in-text credit such as "（编辑：王辉）" closing the story is kept,
# as "(Editing by ...)" is in English stories.
_EDITOR = (
    re.compile(r"^\s*[【\[［（(]?\s*(责任编辑|责编)\s*[:：]"),
    re.compile(r"^\s*[（(]?\s*(文章来源|来源)\s*[:：]"),
    re.compile(r"^\s*海量资讯、精准解读，尽在新浪财经APP"),
    re.compile(r"^\s*(文章|本文)来源[:：]"),
    re.compile(r"^\s*(免责声明|风险提示|郑重声明)[:：].{0,40}"
               r"(自媒体|投资有风险|不代表|仅代表|不构成|风险自[负担])"),
    re.compile(r"^\s*(点击|扫码|扫描|长按).{0,20}(二维码|关注|下载)"),
)


@dataclass(frozen=True)
class Rule:
    """Body selectors (tried in order), boilerplate selectors, block text patterns."""

    body: tuple[str, ...]
    remove: tuple[str, ...] = ()
    remove_text: tuple[re.Pattern[str], ...] = field(default=())
    min_text: int = 30  # a body with less visible text than this does not count


RULES: dict[str, Rule] = {
    # 新浪财经 / 新浪科技 / 新浪新闻
    "sina.com.cn": Rule(
        body=("#artibody", "#article", ".article-content", ".article"),
        remove=(*_ZH_BOILER, ".appendQr_wrap", ".article-editor", ".show_author",
                ".ct_hqimg", "#left_hzh_ad", ".sinaads", "[id^=sinaads]", ".app-kaihu-qr",
                ".article-notice", ".wap_special", ".otherContent_01", ".hqimg_related",
                "[data-sudaclick=blk_content_end_qr]"),
        remove_text=_EDITOR,
    ),
    "sina.cn": Rule(body=(".art_content", ".art_box", "#artibody", "article"),
                    remove=(*_ZH_BOILER, ".look_more"), remove_text=_EDITOR),
    # 第一财经
    "yicai.com": Rule(
        body=("#multi-text", ".m-txt", ".m-text", "#news-content", "article"),
        remove=(*_ZH_BOILER, ".m-share", ".u-share", ".m-statement"),
        remove_text=_EDITOR,
    ),
    # 证券时报
    "stcn.com": Rule(
        body=(".detail-content", ".txt_con", "#ctrlfscont", ".content .txt"),
        remove=(*_ZH_BOILER, ".fenxiang", ".shenming", ".tuijian", ".detail-content-editor",
                ".social-bar"),
        remove_text=_EDITOR,
    ),
    # 东方财富
    "eastmoney.com": Rule(
        body=("#ContentBody", ".txtinfos", ".newsContent", "#newsContent", ".article-body"),
        remove=(*_ZH_BOILER, ".em_stock_key_common", ".b-review", ".social_bind",
                ".res-edit", ".bottom-share"),
        remove_text=_EDITOR,
    ),
    # 格隆汇
    "gelonghui.com": Rule(
        body=(".article-content", ".main-news", ".article-detail .content", ".detail-right"),
        remove=(*_ZH_BOILER, ".article-copyright", ".disclaimer", ".live-share"),
        remove_text=_EDITOR,
    ),
    # 华尔街见闻
    "wallstreetcn.com": Rule(body=(".rich-text", ".article-content", "article"),
                             remove=(*_ZH_BOILER, ".paywall"), remove_text=_EDITOR),
    # 金十数据, 汇通网, 智通财经, 雪球
    "jin10.com": Rule(body=(".detail-content", ".article-content", ".jin-flash-content"),
                      remove=_ZH_BOILER, remove_text=_EDITOR),
    "fx678.com": Rule(body=(".article-main .content", ".article-cont", ".news_con", "#text"),
                      remove=_ZH_BOILER, remove_text=_EDITOR),
    "zhitongcaijing.com": Rule(body=(".news-body-content", ".news-content", ".article-content"),
                               remove=_ZH_BOILER, remove_text=_EDITOR),
    "xueqiu.com": Rule(body=(".article__bd__detail", ".article__bd", ".status-content"),
                       remove=_ZH_BOILER, remove_text=_EDITOR),
    # 中国货币网, 投资者网(证监会发布)
    "chinamoney.com.cn": Rule(body=("#zoom", ".article-content", ".san-article-content"),
                              remove=_ZH_BOILER, remove_text=_EDITOR),
    "csrc.gov.cn": Rule(body=("#ContentRegion", ".detail-news", ".content"),
                        remove=_ZH_BOILER, remove_text=_EDITOR),
    "investor.gov.cn": Rule(body=(".detail-content", ".article-content", ".TRS_Editor"),
                            remove=_ZH_BOILER, remove_text=_EDITOR),
    # 和讯, 网易财经, 新华网, 中国日报
    "hexun.com": Rule(body=(".art_contextBox", "#artibody", ".art_context"),
                      remove=(*_ZH_BOILER, "[class*=showall]"), remove_text=_EDITOR),
    "163.com": Rule(body=("#endText", ".post_body", ".post_text"),
                    remove=(*_ZH_BOILER, ".ep-source", ".post_btmshare", ".gg200x300"),
                    remove_text=_EDITOR),
    "news.cn": Rule(body=("#detail", "#p-detail", ".main-aticle"),
                    remove=(*_ZH_BOILER, "#articleEdit", ".zan-wap"), remove_text=_EDITOR),
    "xinhuanet.com": Rule(body=("#detail", "#p-detail", ".main-aticle"),
                          remove=(*_ZH_BOILER, "#articleEdit"), remove_text=_EDITOR),
    "chinadaily.com.cn": Rule(body=("#Content", ".article"), remove=_ZH_BOILER,
                              remove_text=_EDITOR),
    # English publishers and central banks / regulators in the default config
    "cnbc.com": Rule(
        body=(".ArticleBody-articleBody", "[data-module=ArticleBody]",
              "#RegularArticle-ArticleBody-5"),
        remove=(".InlineVideo-container", ".RelatedContent-relatedContent",
                ".InlineImage-imageEmbedCredit",
                ".RelatedQuotes-relatedQuotes", "[class*=Promo]", "[class*=Ad-]", ".ad",
                ".InlineVideo-wrapper"),  # .ArticleBody-subtitle: the story's subheads, kept
    ),
    "nytimes.com": Rule(
        body=("section[name=articleBody]", "[data-testid=article-body]",
              ".StoryBodyCompanionColumn"),
        remove=("[data-testid=photoviewer-wrapper] figcaption", "[id^=story-ad]", ".ad",
                "[data-testid=inline-message]", "[data-testid=companionColumn-0] aside"),
    ),
    "federalreserve.gov": Rule(body=("#article", "#content .col-xs-12", "#content"),
                               remove=(".shareDL", ".lastUpdate", "#lastUpdate", ".header",
                                       "#article .heading", ".page-header")),
    "sec.gov": Rule(body=(".article-body", "article .usa-prose", "#main-content article",
                          ".field--name-body")),
    "ecb.europa.eu": Rule(body=("main .section", "main"),
                          remove=(".related-topics", ".address-box", ".ecb-langSelector",
                                  ".title", ".ecb-pressContentPubDate")),
    "bankofengland.co.uk": Rule(body=(".page-section .content-block", "#main-content .container",
                                      "main")),
    "boj.or.jp": Rule(body=("#contents", "#main")),
    "bis.org": Rule(body=("#cmsContent", "#center")),
    "cftc.gov": Rule(body=(".press-release", ".field--name-body", "article")),
    "fca.org.uk": Rule(body=(".node__content .field--name-body", "article .field--name-body",
                             "article")),
    "marketwatch.com": Rule(body=("#js-article__body", ".article__body"),
                            remove=(".article__inset", ".component--module", ".element--ad")),
    "ft.com": Rule(body=("#article-body", ".article__content-body", ".n-content-body"),
                   remove=(".n-content-related-box", ".o-ads")),
    "reuters.com": Rule(body=("[class*=article-body__content]", "[data-testid=ArticleBody]",
                              "#article-text", ".StandardArticleBody_body"),
                        remove=("[class*=article-body__toolbar]", "[data-testid=Tooltip]",
                                "[class*=read-next]", "[class*=trust-badge]")),
}


def rule_for(host: str) -> tuple[str, Rule] | None:
    """The rule for `host` or its closest parent domain, with the key it matched."""
    host = host.lower().rstrip(".")
    while host:
        rule = RULES.get(host)
        if rule is not None:
            return host, rule
        if "." not in host:
            return None
        host = host.split(".", 1)[1]
    return None
