"""When the evidence disagrees: the precedence of reference/taxonomy.md, applied after the rules.

Domain layer: pure, stdlib only.
In: the reason the first matching rule gave, the codes and the normalised (lowercased, one-line)
diagnostic. Out: a `Verdict(reason, hard, step, evidence)`: the final reason, whether it is hard,
the precedence step that decided, and the evidence on each side (for `classify --explain`).

Steps, first that applies wins (numbers as in taxonomy.md):
1 sender-side wording beats any code: a hard reason whose text names a blocklist, reputation, a
  rate limit, spam, a policy or SPF/DKIM/DMARC is a block, not a fact about the address (and so is
  a suspend / mailboxfull / exceedlimit that only a code gave, or whose text says the account is
  ours: they count toward suppression); so is
  one given in reply to MAIL FROM (no recipient named yet: the sender was refused, `rejected`),
  and one whose wording is about our sender ("sender domain does not exist", "No such user (sender)");
2 temporary DNS ("try again", SERVFAIL, timeouts, a 4xx code) is networkerror, never hostunknown;
3 stage: "user unknown" after DATA is a recipient-side filter unless the status is x.1.1;
4 a DSN with Action: failed and a 4.x.x status is an expiry (`expired_by_action`, used by the
  message reader, which alone sees the Action field);
5 receiver-specific meanings are rules (rules/wordings.toml, tried before the generic rules); a
  hard verdict from a rule for one receiver stands against step 6's doubts about its status code;
6 when still in doubt, soft: a hard reason under a temporary (4xx / 4.x.x) code is not hard; a
  "user unknown" under x.2.0 / x.2.1 (the mailbox exists) or under a security / policy status
  (x.7.x) is filtered / suspend unless the refusal answered RCPT TO (then step 3: the address);
  a hard reason read from a code alone (x.1.2, x.1.6, 521 / 556, which are tried before the
  wording rules) yields to the first wording rule that reads the text as something other than the
  address, and so does a counted one (x.2.1 / x.2.2 / x.2.3) whose text does not say what the
  code says (`text_over_code`, applied by the Classifier; step 1 when that wording is sender-side).
Step "rule" means the rule's verdict stood.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from bounceproc.domain.alternation import fast_alternations, prefiltered
from bounceproc.domain.lazy_regex import lazy

HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})
# Soft reasons that count toward the soft-bounce threshold (rules/actions.toml): step 1 protects
# them too where only a code decided them.
COUNTED_REASONS = frozenset({"suspend", "mailboxfull", "exceedlimit"})
# A disabled / suspended / full account, domain or access that the text says is ours ("Your account
# has been suspended for sending spam", "Sender account disabled", an ESP's "Your API key is
# disabled", "Outbound mail has been suspended"): a refusal of our mail.
_OUR_SIDE = lazy(r"\b(?:your|sender(?:'s)?|sending) (?:e-?mail |mail |smtp |sending )?"
                 r"(?:account|domain|ip|ip address|access|server|host|network|organi[sz]ation"
                 r"|tenant)\b|\bthe sender (?:is|has been|was) |\byour (?:sender|from|return) (?:e-?mail )?address"
                 r"|\byour (?:subscription|api key|plan|sending|(?:daily |sending |message )?quota)\b|\b(?:outbound|outgoing) (?:mail|e-?mail|sending)\b"
                 # "your account / sending quota" in German, French, Spanish, Italian, Portuguese,
                 # Russian, Chinese, Japanese, Korean ("Ihr Konto wurde gesperrt" is our account)
                 r"|\b(?:ihr|dein)(?:e|en)? (?:konto|account|kontingent|versand)|\bvotre (?:compte|quota d.envoi)"
                 r"|\b(?:su|tu) (?:cuenta|cuota de env[ií]o)\b|\bil (?:tuo|suo) account\b|\b(?:sua|tua) (?:conta|cota de envio)\b"
                 r"|\bваш(?:а|его|ей|у)? (?:аккаунт|учётн|учетн|квот)|(?:您|你)的(?:账户|帐户|賬戶|账号|帐号|帳號|发送|發送|发信|發信)"
                 r"|(?:お客様|あなた)の(?:アカウント|送信)|귀하의 (?:계정|발송)")
# ... and what else of ours a "hard" wording may be about: our credentials and certificates, the
# addresses in our message's headers or envelope ("Invalid address in From header", "Account does
# not exist for sender", "Invalid e-mail address format in MAIL FROM").
_OUR_THINGS = lazy(r"\byour (?:certificate|credentials|login|password|token|licen[cs]e|key|client|mta|helo)\b"
                   r"|\b(?:in|of) (?:the |your )?(?:from|reply-to|sender|return-path)(?::)? (?:header|field|address)"
                   r"|\bin mail from\b|\bfor (?:the )?sender\b|\bsender (?:does not|doesn.t) have\b"
                   r"|\b(?:from|reply-to|sender|return-path):? (?:header|field)\b"
                   r"|\b(?:helo|ehlo)\b|\bdomain of (?:the )?sender\b|\bsender(?:'s)? (?:e-?mail )?domain\b")
# ... unless the text also says what the code says ("Mailbox full, see our quota policy").
_OWN_WORDS = {
    "mailboxfull": lazy(r"\bfull\b|(?<!sending )quota|storage|disk space|mailbox size|too many messages on|too much mail"),
    "exceedlimit": lazy(r"\bsize\b|too (?:big|large)|\blength\b"),
    "suspend": lazy(r"disabled|inactive|suspended|deactivated|not active|closed|locked|frozen"),
}

# What is full when a mailbox-full code (x.2.2) comes with a text about the receiving system, not
# a mailbox ("452 4.2.2 Queue full", "Connection table full"): systemfull / toomanyconn, which do
# not count toward the recipient's threshold.
_SYSTEM_FULL = lazy(r"\b(?:(?P<conn>connection|session)s?(?: table| pool| limit)?|server|servers|queue|spool|disk(?! quota)"
                    r"|system|storage of the server)\b(?: \S+){0,3} (?:is |are )?(?:full|at capacity|exceeded|reached)"
                    r"|\bat capacity\b|insufficient (?:system |disk )?(?:storage|space)")
# A text's words, once codes, addresses, host names and the reader's notes are taken out.
_CODES_AND_NOTES = lazy(r"\((?:smtp stage|local mailer|notice): [^)]*\)|<[^>]*>|\S*[\d@]\S*|\S+\.\S+")
_WORDS = lazy(r"[^\W\d_]{3,}")
_MAILBOX_WORDS = lazy(r"mailbox|inbox|\buser|recipient|account|addressee|postfach|bo[iî]te")

# Sender-side evidence: (reason it points to, pattern). URLs are removed before searching, so a
# link to "…/policy/…" or "…?p=spam" is not evidence. Compiled letter-first (alternation.py): this
# runs on every hard verdict.
_PTR_WORDS = r"reverse (?:dns|hostname|host ?name|lookup|address|mapping)|\bptr\b|\brdns\b"
SENDER_SIDE = (
    ("blocked", r"spamhaus|spamcop|sorbs|barracuda|\brbl\b|dnsbl|\bcbl\b|black ?list|block ?list|deny ?list"
                r"|(?<!not )listed (?:at|in|on|by)|\bip(?: address)?(?: \[?[0-9a-f.:]{3,39}\]?)? (?:is |was |has been )?"
                r"(?:currently )?listed\b|\bblocked\b|invaluement|ivmsip|uceprotect|mailspike|\bpsbl\b|\bsurbl\b"
                r"|\buribl\b|\b(?:[a-z0-9-]+\.)*(?:bl|rbl|dnsbl)\.[a-z0-9-]+\.[a-z]{2,}"
                # not on the receiver's allow list: our host or sender was not let in
                r"|not (?:found |listed )?(?:in|on) (?:the |our |any |their )?(?:allow|white|safe|permit)(?:ed)?[- ]?(?:senders? )?list"
                r"|not (?:white|allow|safe)[- ]?listed"
                # the receiver's defences named: a firewall, an anti-abuse or anti-spoofing check, a
                # sender it does not trust, bounces it does not want (backscatter)
                r"|\bfirewall\b|anti-?abuse|abuse (?:detected|filter|system|protection|prevention)|spoof"
                r"|\buntrusted\b|backscatter"
                # addressed to us: "we do not accept your mail", "mail from you is not accepted", "go away"
                r"|(?:do|does|will) not accept (?:your |any )?(?:mail|messages?|e-?mails?|connections?) from you\b"
                r"|\bwe (?:do not|don.t|will not|won.t) accept your (?:mail|messages?|e-?mails?)"
                r"|(?:mail|messages?|e-?mails?|connections?) from you (?:is |are )?(?:not (?:accepted|allowed|welcome)|(?:rejected|refused|denied|blocked))"
                r"|\bgo away\b"
                # "blocked" in German, French, Spanish / Portuguese, Italian, Russian, Dutch, Polish,
                # Chinese, Japanese, Korean (not German "gesperrt": a locked account, suspend)
                r"|blockiert|bloqu[ée]|bloquead|bloccat|заблокирован|geblokkeerd|zablokowan|封禁|屏蔽|ブロック|차단"
                # "black list" in the same and eleven more languages
                r"|sperrliste|liste noire|lista negra|lista nera|ч[её]рн\S* спис|黑名单|黑名單|ブラックリスト|블랙리스트"
                r"|schwarze[nr]? liste|zwarte lijst|czarn\S* li[sś]|čern[éá] listin|kara ?liste|svartlist|sortlist"
                r"|svarteliste|musta(?:lla|lle)? lista|feketelist|lista neagr|μαύρη λίστα|чорн\S* спис"),
    ("requireptr", _PTR_WORDS),
    ("blocked", r"client host (?:rejected|blocked|refused)|\byour (?:connection|host|server|mail server|network|domain)(?: \S+)? (?:is |was |has been )?(?:rejected|refused|denied|banned|not (?:allowed|accepted|welcome))\b|\b(?:your |sending |client |source )?ip(?: address)?(?: \[?\d{1,3}(?:\.\d{1,3}){3}\]?)? (?:is |was |has been )?(?:rejected|refused|denied|banned|hangup)\b|(?:helo|ehlo) command (?:\[[^\]]*\] )?rejected"
                r"|(?:invalid|bad|unknown|forged) (?:helo|ehlo)\b|\bgeo-?ip\b|from your (?:country|network)\b"),
    # (our list's quality: many unknown recipients or bounces from our IP, as Verizon's "VS1-IP")
    ("badreputation", r"reputation|r[ée]putation|reputaci[oó]n|reputa[cç][aã]o|reputazione|репутаци|信誉|信譽|声誉"
                      r"|レピュテーション|평판|sender ?score|\bcomplaints\b"
                      r"|(?:too many|excessive|high (?:number|rate) of) (?:invalid|bad|unknown|non-?existent|failed|undeliverable) (?:recipients|addresses|users)"
                      r"|\b(?:your|sender|sending) (?:ip|domain|host|server|address|account|network)(?: address)?(?: \S+)? (?:has been|was|is) flagged\b"
                      r"|(?:excessive|too many) bounces|(?:high|excessive) bounce rate"
                      # our sending history, or our domain's age
                      r"|(?:poor|bad|no|insufficient|limited) sending history|(?:newly|recently) registered domain"
                      r"|domain (?:age|is too (?:new|young))|young domain"),
    ("speeding", r"(?<!hat )zu viele (?:e-?mails|nachrichten|mails)(?! auf dem server| im postfach)|trop d.(?:e-?mails?|messages?|courriels?)"
                 r"|demasiados (?:correos|mensajes)|troppe (?:e-?mail|email|messaggi)|слишком много (?:сообщений|писем)"
                 r"|versandlimit|limite d.envoi|l[ií]mite de env[ií]o|limite di invio|лимит отправки"
                 r"|频率|頻率|(?:过于|過於)(?:频繁|頻繁)|送信(?:数|量)?が多すぎ|발송(?:량)? ?(?:초과|한도)|rate.?limit|\brate\b|too many (?:messages|connections|recipients)|recipients? (?:limit|count) (?:exceeded|reached)"
                 r"|throttl|frequency|(?:high|unexpected|unusual|excessive) volume|volume of (?:e-?)?(?:mail|messages)|(?:hourly|daily|per.hour|per.day) (?:message |sending |send |outbound )?(?:quota|limit)"),
    ("spamdetected", r"\bspam|спам|нежелательн|垃圾邮件|垃圾郵件|迷惑メール|스팸|unsolicited|敏感[词詞]|(?:内容|內容)(?:违规|違規)|(?:违规|違規)(?:内容|內容)"
                     r"|verbotene[rn]? inhalt|contenu interdit|contenido prohibido|contenuto vietato|conte[úu]do proibido"
                     r"|запрещ[её]нн\S* (?:содержим|контент)"
                     r"|inhalt(?: \S+)? abgelehnt|contenu(?: \S+)? (?:refus[ée]|rejet[ée])|contenido(?: \S+)? rechazado"
                     r"|contenuto(?: \S+)? rifiutato|conte[úu]do(?: \S+)? (?:recusado|rejeitado)|содержимое(?: \S+)? отклонено"
                     r"|内容(?:被)?(?:拒绝|拒絕)|\bbulk\b|\bjunk\b|phish|\bcontent (?:was )?(?:rejected|refused|blocked|filter(?:ed|ing)?)\b"
                     r"|\bcontent (?:is )?not acceptable|unacceptable content|(?:message|mail|e-?mail|content)(?: \S+){0,3} (?:as )?fraud(?:ulent)?\b|fraudulent (?:message|mail|e-?mail|content|link|url)|\bscam\b"
                     r"|(?:marketing|newsletter|promotional|advertising)s? (?:mail|e-?mails?|messages?)?(?: \S+)? ?(?:is |are )?"
                     r"(?:not (?:accepted|allowed|permitted)|rejected|refused|blocked)"
                     # "suspicious content / message" in the same languages
                     r"|verd(?:ä|ae)chtige[rn]? (?:inhalt|nachricht|e-?mail|anhang|link)|contenu suspect|message suspect"
                     r"|contenido sospechoso|mensaje sospechoso|contenuto sospetto|messaggio sospetto|conte[úu]do suspeito"
                     r"|mensagem suspeita|подозрительн[а-я]* (?:содержим|контент|сообщени|письм|ссылк)|可疑(?:内容|邮件|郵件)|疑わしい(?:内容|メール)"),
    ("securityerror", r"requires? authentication|authentication (?:is )?required|use your isp.?s? (?:relay|smtp|mail)"
                      r"|use your (?:internet (?:service )?|e-?mail |mail )?provider.?s? (?:outgoing |smtp |mail |outbound )*(?:relay|server|smarthost)"
                      r"|your isp.?s? (?:mail |smtp |outgoing )?(?:server|relay)s? (?:must|should) be used|submission port|port 587"
                      r"|\bcipher|\bdane\b|\btlsa\b|mta-sts|certificate (?:verification|validation|check) failed"
                      # our client's own login refused (submission / smarthost credentials)
                      r"|invalid login|login (?:failed|incorrect|denied)|authentication (?:failed|failure)"
                      r"|incorrect authentication|invalid (?:password|credentials)|(?:or|and) (?:invalid |wrong |bad )?password"
                      # authentication required, in German, French, Spanish, Italian, Portuguese,
                      # Russian, Chinese, Japanese
                      r"|authentifizierung (?:ist )?erforderlich|authentification (?:est )?(?:requise|obligatoire|n[ée]cessaire)"
                      r"|autenticaci[oó]n|autenticazione (?:è )?richiesta|autentica[cç][aã]o|требуется (?:аутентификация|авторизация)"
                      r"|需要\S{0,6}?(?:验证|驗證|认证|認證)|認証が必要"
                      # authentication failed / not authenticated, in Chinese, Japanese, Korean
                      r"|(?:认证|認證|验证|驗證)失[败敗]|認証(?:に)?失敗|認証されていません|인증 ?실패"
                      # authentication failed, in German, French, Italian, Portuguese, Russian
                      r"|authentifizierung fehlgeschlagen|[ée]chec de (?:l.)?authentification"
                      r"|authentification (?:a )?[ée]chou[ée]e?|autenticazione fallita|falha (?:na|de) autentica[cç][aã]o"
                      r"|ошибка (?:аутентификации|авторизации)"),
    ("authfailure", r"(?<![a-z])(?:dmarc|spf|dkim)(?![a-z])|(?:message|mail) (?:is )?not signed|from domain (?:mis-?match|not aligned|does not align)|domain (?:mis)?alignment"),
    # (also in German, French, Spanish / Portuguese / Italian, Russian, Chinese, Japanese, Korean)
    ("policyviolation", r"\bpolic(?:y|ies)\b|richtlinie|politique|pol[ií]tica|политик|策略|ポリシー|정책"),
)
_SENDER = prefiltered(rx for _, rx in SENDER_SIDE)     # where: the leftmost evidence
_PTR = prefiltered([_PTR_WORDS])
_URL = lazy(r"(?<!\S)(?:\S*?(?:https?://|www\.)|\S+?\.(?:html?|aspx?|php))\S*")   # a word with a link
URL_MARKS = ("http", "www.", ".htm", ".asp", ".php")     # a text without one has no link to remove
_RETRYING = (r"try (?:again )?later|\bdeferred\b|\bretrying\b|will (?:be )?retr(?:y|ied)"
             r"|please retry\b(?! with)|[,;] retry\b(?! with| using| count| limit)"
             r"|\bretry (?:later|again|shortly|in (?:\d|an?\b|a few\b|one\b))|queued for (?:re-?try|re-?delivery)"
             r"|\btry again in (?:\d|an?\b|a few\b|one\b)"
             r"|come back later|re-?send (?:it |the message )?later|re-?sending (?:it |this |the |your )?(?:message |e-?mail )?later"
             r"|try again (?:tomorrow|soon|shortly)|wait (?:a (?:while|moment|bit|few minutes) )?and try again"
             # "try again later" in German, French ("plus tard", "ultérieurement"), Spanish, Italian,
             # Portuguese, Polish, Russian, Chinese and Japanese
             r"|sp(?:ä|ae)ter (?:erneut|noch ?(?:ein)?mal|wieder)|r[ée]?essa(?:yez|yer) (?:plus tard|ult[ée]rieurement)"
             r"|int[ée]nte(?:lo)? (?:de nuevo |nuevamente )?m[áa]s tarde|riprova(?:re)? pi[ùu] tardi"
             r"|tente (?:novamente )?mais tarde|spr[óo]buj(?: ponownie)? p[óo](?:ź|z)niej"
             r"|(?:попробуйте|повторите)(?: попытку| ещё раз| еще раз)? позже|稍后(?:再试|重试)|稍後(?:再試|重試)"
             r"|しばらく(?:して|経って)から|後ほど再"
             # and in German / Spanish without those words ("versuchen Sie es später", "inténtalo
             # más tarde"), Dutch ("probeer (het) later"), Korean,
             # Turkish, Czech / Slovak, Swedish, Norwegian / Danish, Finnish, Hungarian, Romanian,
             # Greek, Ukrainian, Vietnamese, Indonesian, and Japanese / Chinese variants
             r"|versuchen sie es sp(?:ä|ae)ter|int[ée]nt(?:e|a|ar)lo (?:de nuevo )?m[áa]s tarde"
             r"|vuelva a intentar(?:lo)? m[áa]s tarde|probeer (?:het )?later|나중에 다시|(?<!하고 )(?<!후 )(?<!뒤 )다시 시도"
             r"|daha sonra (?:tekrar|yeniden) dene|(?:zkuste|skúste|opakujte)(?: to)?(?: (?:prosím|znovu|neskôr|později))* (?:později|neskôr)"
             r"|f(?:ö|o)rs(?:ö|o)k (?:igen )?senare|pr(?:ø|o)v (?:igjen|igen) senere|yrit(?:ä|a) (?:uudelleen )?my(?:ö|o)hemmin"
             r"|pr(?:ó|o)b(?:á|a)lja (?:meg )?(?:(?:ú|u)jra )?k(?:é|e)s(?:ő|o)bb|(?:î|i)ncerca(?:ț|t)i (?:din nou )?mai t(?:â|a)rziu"
             r"|δοκιμάστε (?:ξανά )?αργότερα|спробуйте (?:ще раз )?пізніше|thử lại sau|coba (?:lagi )?nanti"
             r"|時間を(?:おいて|空けて)|後で(?:もう一度|再度)|稍[后後候]再[发發试試]")
# ("try again" on its own, but not "check the address and try again", how final notices end)
# "temporary" in German, French, Spanish / Italian / Portuguese, Dutch, Polish, Russian, Chinese,
# Japanese, Korean, Turkish, Czech / Slovak, Swedish / Norwegian / Danish, Finnish, Hungarian,
# Romanian, Greek, Ukrainian, Vietnamese
_TEMPORARY_LOCALISED = (r"vor(?:ü|ue)bergehend|temporaire|temporal(?:mente)?\b|temporane|tempor[áa]ri|tijdelijk|일시적|잠시 후"
                        r"|tymczasow|chwilowo|временн|暂时|暫時|临时|臨時|一時的|ge(?:ç|c)ici|do(?:č|c)asn|tillf(?:ä|a)llig"
                        r"|midlertidig|tilap(?:ä|a)i|v(?:ä|a)liaikai|ideiglenes|\btemporar[ăae]?\b|προσωριν|тимчасов|tạm thời")
_TRY_AGAIN = lazy(r"(?<!\band )(?<!\bthen )\btry again\b(?! with| using)|" + _RETRYING
                + r"|servfail|(?:dns|name) server failure|temporar|timed? ?out|name lookup failure|gr[ae]ylist"
                  r"|did not complete|eai_again|dns query failed|no answer from|" + _TEMPORARY_LOCALISED)
# Said of a lookup, these are temporary too ("DNS: no response", "Unable to resolve MX: REFUSED",
# "DNS lookup in progress", "could not be resolved at this time"); said of anything else they are
# not about DNS ("521 Connection refused", "Maintenance in progress"), so they are read only where
# the text names the lookup.
_TRY_AGAIN_DNS = lazy(r"no (?:dns )?response|\brefused\b|resolver (?:error|failure)|in progress|at (?:this|the) (?:time|moment)")
# A hard wording that the receiver itself calls not final (step 6: a soft userunknown is counted
# toward the soft-bounce threshold, not suppressed at once).
_STILL_TRYING = lazy(_RETRYING + r"|gr[ae]ylist|\btemporar(?:y|ily)\b|\btimed out\b|\bbusy\b|out of resources|overload"
                     r"|\bcurrently (?:unavailable|not available|unreachable)|\bat (?:this|the) (?:time|moment)\b|\bright now\b"
                     r"|unexpected error|\btime-?out\b|queued for later|" + _TEMPORARY_LOCALISED)
# A reply whose subject is our message, refused, with no cause a rule reads ("Your mail was
# rejected", "We can't accept your mail"): under a code alone that says "no such address" (x.1.1,
# x.1.2, 521) the text and the code disagree, so in doubt, soft (step 6). Only the receiver's
# reply (after its code) is read, and not "could not be delivered": notices open with such
# sentences whatever the cause, and leave the cause to the code.
_OUR_MESSAGE_REFUSED = lazy(r"^\d{3}[ -](?:#?[245]\.\d{1,3}\.\d{1,3} )?(?:<[^>\s]+>\S* )?(?:sorry,? )?"
                            r"(?:(?:your|this|the) (?:message|mail|e-?mail)\b(?: \S+){0,3}? (?:was |has been |is |could )?(?:not )?"
                            r"(?:rejected|refused|declined|accepted|blocked|denied|flagged|dropped|allowed|be (?:verified|accepted))"
                            r"|(?:we|i) (?:do not|don.t|can.t|cannot|could not|will not|won.t) accept (?:your|this) "
                            r"(?:message|mail|e-?mail))")
# The generic "user unknown" wordings that carriers also use for their receive filters (§1.10).
_GENERIC_UNKNOWN = lazy(r"user unknown|unknown user|no such user|unknown recipient|recipient unknown|account unknown"
                        r"|user not known|user invalid|invalid user"
                        r"|user not found|unknown (?:local|e-?mail) ?(?:part|address)")
_DNS_FAILURE = lazy(r"host (?:or domain name )?(?:not found|unknown)|no such domain|nxdomain|lookup|name ?serv(?:er|ice)")
_DNS_WORDS = lazy(r"dns|name ?server|lookup|nxdomain|host not found|mx (?:record|lookup)|no mx|domain name")
# The lookup named at all (step 2 reads _TRY_AGAIN_DNS only then): _DNS_WORDS's lookup words, and
# a resolver or an MX named alone ("Unable to resolve MX: REFUSED"), but not "domain name".
_LOOKUP_WORDS = lazy(r"dns|name ?serv|lookup|nxdomain|resolv|\bmx\b")
# The refusal answered RCPT TO (stage 3: there "user unknown" is about the address, whatever the code);
# Postfix's "Recipient address rejected:" is written by its RCPT TO checks only (smtpd_check.c);
# Gmail's older notices number the stage, "(state 13)" for RCPT TO (wordings.md 1.1).
_AT_RCPT = lazy(r"smtp stage: rcpt|in (?:reply|response) to (?:the )?rcpt(?: to| command)|after (?:pipelined )?rcpt to"
                r"|during rcpt to|does not like recipient|\[rcpt_to\]"
                r"|\(state 13\)"
                r"|recipient address rejected")
# The refusal answered MAIL FROM: the recipient had not been named yet, so a "hard" wording there
# ("User unknown", "Address rejected", x.1.x) is about our sender (taxonomy: rejected).
_AT_MAIL = lazy(r"smtp stage: mail|in (?:reply|response) to (?:the )?mail(?: from| command)|after (?:pipelined )?mail from"
                r"|sender was rejected")
# What a "hard" wording says of its subject: it does not exist, does not resolve, moved.
_DOES_NOT_EXIST = (r"(?:does not exist|doesn.t exist|not found|unknown|invalid|not valid|not listed in"
                   r"|not a valid (?:user|domain|address|mailbox|recipient|account|e-?mail)"
                   r"|does not resolve|unresolvable|not registered|lookup failed|unavailable|not known|not recogni[sz]ed"
                   r"|no longer (?:exists?|valid|available|in use|active)|has moved|was moved"
                   r"|no such (?:user|mailbox|address|account|domain|host)|(?:does not|doesn.t) accept (?:e-?)?mail"
                   r"|has no (?:mx|dns|a|valid)\b(?: (?:or|and) \w+)?(?: records?)?"
                   r"|(?:could not|cannot|can.t) be (?:resolved|found|verified)|nxdomain)")
# A "hard" wording whose subject is our sender ("sender domain does not exist", "Sender domain
# example.org has no MX record", "From address does not exist", "No such user (sender)"): the sender
# refused (taxonomy: rejected), whatever the stage; Postfix checks the sender at RCPT TO ("Sender
# address rejected: Domain not found (in reply to RCPT TO command)").
_SENDER_SUBJECT = lazy(
    r"\b(?:sender(?:'s)?|from address|mail from|envelope[- ](?:sender|from|domain)|return[- ]path|originator|your domain"
    r"|your (?:e-?mail )?(?:address|account)"
    r"|bounce address)"
    r"(?: (?:e-?mail |mail )?(?:address(?: domain)?|domain(?: name)?|host|mailbox|user|account))?"
    r"(?: <[^>\s]*>| [\w.+-]*[.@][\w.-]+)?(?: (?:is|was))? " + _DOES_NOT_EXIST +
    r"|(?:no such user|unknown user|user unknown)(?: \S+)? \(?(?:in )?(?:sender|mail from)\b"
    r"|(?:does not exist|doesn.t exist|not found|unknown) \((?:in )?(?:sender|mail from)\)"
    # Exim's sender verification: "Verification failed for <sender>", then the callout's
    # "Called: … Response: 550 … User unknown", then "Sender verify failed" (smtp_in.c); some
    # MTAs keep only the first line of a multi-line reply.
    r"|sender verif\w* failed|verification failed for"
    # "Mail from example.org refused, the domain does not exist": the domain is the one mail came from
    r"|mail from (?:<[^>\s]*>|[\w.+-]*[.@][\w.-]+) (?:refused|rejected|denied)\W+(?:the |this |that |its )?"
    r"(?:domain|address|sender)(?: \S+)? " + _DOES_NOT_EXIST +
    # "Mail from non-existent domain rejected", "No such domain at sender": the domain mail came from
    r"|\b(?:mail|messages?|e-?mails?) from (?:an? |the )?(?:non-?existent|nonexisting|unknown|invalid|unresolvable"
    r"|unregistered) (?:sender )?(?:domains?|addresse?s?|senders?)\b"
    r"|\b(?:no such|unknown|invalid) domain (?:at|in|for|of) (?:the )?(?:sender|mail from|envelope)\b"
    # the addresses of our message's headers: Return-Path / Reply-To (or its domain), the header From
    r"|\b(?:(?:return|reply(?:-to)?) address|reply-to domain|(?:header )?from:?(?: header)? (?:e-?mail )?(?:address|domain))"
    r"(?: domain)?(?: (?:is|was))? " + _DOES_NOT_EXIST +
    # the domain named as ours: "the domain of the sender", "the domain in your From address",
    # "the domain you are sending from", "sending / originating domain"
    r"|\bdomain (?:of (?:the )?sender(?: address)?|(?:part )?(?:in|of) (?:your|the) (?:from|sender|return)(?:[- ]\w+)?(?: address)?"
    r"|you are sending from)(?: (?:is|was))? " + _DOES_NOT_EXIST +
    r"|\b(?:sending|originating|your sending) domain(?: (?:is|was))? " + _DOES_NOT_EXIST +
    # the domains our message carries: its DKIM signature's (d=, selector), its links', its
    # bounce / tracking domain, the DMARC organizational domain of its From
    r"|\b(?:signing|d=|dkim(?: signing)?|selector|url|link|tracking|click|bounce|header|organi[sz]ational) domain"
    r"(?: \S+)?(?: (?:is|was))? " + _DOES_NOT_EXIST)
# The same in the languages the rules read: our sender's address or domain, or our IP, followed
# by what the localised unknown-user / dead-domain families say ("Die Absenderadresse existiert
# nicht", "L'adresse de l'expéditeur n'existe pas", "发件人不存在", "Ihre IP-Adresse ist unbekannt").
_OURS_LOCALISED = lazy(
    r"(?P<sender>absender(?:adresse|-?domain|-?dom(?:ä|ae)ne)?(?: \S+){0,2} (?:existiert nicht|nicht existiert|(?:ist )?unbekannt|nicht gefunden"
    r"|(?:ist )?ung(?:ü|ue)ltig)"
    # the adjective first: "Ungültige Absenderadresse", "Неверный адрес отправителя"
    r"|(?:ung(?:ü|ue)ltige|unbekannte|nicht existierende)[rns]? absender(?:adresse|domain|-?dom(?:ä|ae)ne)?\b"
    r"|(?:неверн|недопустим|неизвестн|несуществующ|недействительн)[а-я]* (?:адрес|домен|ящик) отправителя"
    r"|(?:неизвестн|несуществующ|недопустим|невідом|неіснуюч)[а-яіїєґ]* (?:отправител|відправник)"
    r"|(?:nieznany|nieprawid[lł]owy) nadawca|(?:nezn[aá]m[yý]|neplatn[yý]) odes[ií]latel"
    # the sender named, then a colon, then what does not exist ("Absender: Domain existiert nicht");
    # no address or other field between (a notice's "Absender: a@b Empfänger: c@d existiert nicht")
    r"|(?:\babsender|\bexp[ée]diteur|\bremitente|\bmittente|\bremetente|\bотправитель|\bafzender|\bnadawca"
    r"|\bodes[ií]latel|\bavs[äa]ndare?|\bafsender|\bavsender|\bl[äa]hett[äa]j[äa]|\bfelad[óo]|\bexpeditor"
    r"|αποστολέας|\bвідправник|\bg[öo]nderen|người gửi|\bpengirim|发件人|發件人|送信者|差出人|발신자) ?: ?(?:[^\s@:<>]+ ){0,3}?"
    r"(?:existiert nicht|unbekannt|nicht gefunden|n.existe pas|inexistant|introuvable|inconnu|no existe|desconocid"
    r"|non esiste|inesistente|sconosciut|n[aã]o existe|desconhecid|не существует|не найден|неизвест|bestaat niet"
    r"|onbekend|nie istnieje|nieznan|neexistuje|nezn[aá]m|finns inte|findes ikke|finnes ikke|ei ole olemassa"
    r"|nem l[ée]tezik|nu exist|δεν υπάρχει|не існує|mevcut de[ğg]il|bulunamad|không tồn tại|tidak ada|不存在"
    r"|存在しません|見つかりません|존재하지 않)"
    # Romanian, Greek, Ukrainian, Vietnamese, Indonesian: the sender (or its address / domain) does not exist / is unknown
    r"|\bexpeditor(?:ul)?(?: \S+){0,2} (?:nu exist[aă]|necunoscut|invalid)|(?:adresa|domeniul) expeditorului(?: \S+){0,2} (?:nu exist[aă]|necunoscut|invalid)"
    r"|αποστολέας?(?: \S+){0,2} (?:δεν υπάρχει|άγνωστος|μη έγκυρος)|άγνωστος αποστολέας"
    r"|відправник[а-яіїєґ]*(?: \S+){0,2} (?:не існує|невідом|не знайдено|недійсн)"
    r"|người gửi(?: \S+){0,2} (?:không tồn tại|không hợp lệ|không xác định)"
    r"|\bpengirim(?: \S+){0,2} (?:tidak ada|tidak dikenal|tidak valid|tidak ditemukan)"
    # the sender not allowed, in German, French, Spanish, Italian, Portuguese, Russian
    r"|absender (?:ist )?nicht (?:erlaubt|autorisiert|zugelassen)|exp[ée]diteur non autoris[ée]|remitente no autorizado"
    r"|mittente non autorizzato|remetente n[aã]o autorizado|отправитель не авторизован"
    r"|(?:adresse|domaine) (?:de l.|d.)?exp[ée]diteur(?: \S+){0,2} (?:n.existe pas|inconnue?|introuvable|invalide|inexistante?)"
    r"|(?:direcci[oó]n|dominio|correo) del remitente(?: \S+){0,2} (?:no existe|desconocid[oa]|inv[aá]lid[oa]|inexistente"
    r"|no (?:es )?v[aá]lid[oa])"
    r"|(?:endere[cç]o|dom[ií]nio|e-?mail) do remetente(?: \S+){0,2} (?:n[aã]o existe|desconhecid[oa]|inv[aá]lid[oa]|inexistente"
    r"|n[aã]o (?:[eé] )?v[aá]lid[oa])"
    r"|(?:indirizzo|dominio) del mittente(?: \S+){0,2} (?:non esiste|sconosciut[oa]|inesistente|non valid[oa])"
    r"|(?:адрес|домен|ящик) отправителя(?: \S+){0,2} (?:не существует|не найден|неизвест|неверн|недействител)"
    r"|(?:\bafzender\S*|(?:adres|domein) van de afzender)(?: \S+){0,2} (?:bestaat niet|(?:is )?onbekend|niet gevonden|(?:is )?ongeldig)"
    r"|(?:\bnadawca|(?:adres|domena|skrzynka) nadawcy)(?: \S+){0,2} (?:nie istnieje|nieznan[yae]|nieprawid[lł]ow[yae])"
    r"|(?:\bodes[ií]latel|(?:adresa|dom[eé]na) odes[ií]latele)(?: \S+){0,2} (?:neexistuje|nezn[aá]m[aáý]|neplatn[aáý])"
    r"|\b(?:afsender|avsender|avs[aä]ndar)\S*(?: \S+){0,2} (?:findes ikke|finnes ikke|finns inte|eksisterer ikke"
    r"|existerar inte|er ukendt|er ukjent|[aä]r ok[aä]nd)"
    r"|\bg(?:ö|o)nderen[^\s:]*(?: \S+){0,2} (?:bulunamad[ıi]|mevcut de(?:ğ|g)il|ge(?:ç|c)ersiz|bilinmiyor)"
    r"|\bl(?:ä|a)hett(?:ä|a)j(?:ä|a)[^\s:]*(?: \S+){0,2} (?:ei l(?:ö|o)ydy|ei ole olemassa|(?:on )?tuntematon|(?:on )?virheellinen)"
    r"|\bfelad(?:ó|o)[^\s:]*(?: \S+){0,2} (?:nem l(?:é|e)tezik|ismeretlen|(?:é|e)rv(?:é|e)nytelen|nem tal(?:á|a)lhat(?:ó|o))"
    r"|bilinmeyen g(?:ö|o)nderen|tuntematon l(?:ä|a)hett(?:ä|a)j(?:ä|a)|ismeretlen felad(?:ó|o)"
    r"|(?:发件人|發件人|发信人|發信人)(?:的)?(?:地址|邮箱|郵箱|域名|網域)?(?:不存在|无效|無效|未知|不合法|非法|无法解析|無法解析)"
    r"|(?:送信者|差出人|送信元)(?:の)?(?:メール)?(?:アドレス|ドメイン)?(?:名)?(?:が|は)?(?:存在しません|見つかりません|不明|無効|解決できません)"
    r"|(?:발신자|보낸 ?사람|발신)(?:의)?(?: 주소| 도메인)?(?:가|는|이|을)? ?(?:존재하지 않|찾을 수 없))"
    r"|(?P<ip>(?:ihre|deine|votre|ta|su|tu|seu|sua|il tuo|la tua|ваш)(?: \S+)? (?:ip|ip-adresse|adresse ip|direcci[oó]n ip"
    r"|endere[cç]o ip|indirizzo ip|ip-адрес)(?: \S+){0,2} (?:ist |est |es |é |è )?(?:unbekannt|inconnue?|desconocid[oa]"
    r"|desconhecid[oa]|sconosciut[oa]|неизвест))")
# A "hard" wording whose subject is our host, its name, IP, MX or HELO name ("Client host name
# unknown", "Your hostname could not be resolved", "HELO name not found"): the receiver's check of
# the connecting host (taxonomy: requireptr for its name, blocked otherwise), never the address.
# An IPv4 address as a word, bracketed or not ("192.0.2.1", "[192.0.2.1]").
_IPV4 = r"\[?\d{1,3}(?:\.\d{1,3}){3}\]?"
_OUR_HOST_SUBJECT = lazy(
    # a host named by its IP address, or the one connecting, that is "unknown": the receiver's
    # reverse lookup of our IP ("Unknown host 192.0.2.1", "Connection from unknown host rejected")
    r"\b(?P<ptr>(?:unknown|unresolvable|unverified) (?:client|host|ip)(?: address| name)? \[?\d{1,3}(?:\.\d{1,3}){3}\b"
    r"|(?:connections?|mail) from (?:an? )?unknown (?:host|client)\b|unknown (?:client|ip(?: address)?)\b)"
    r"|\b(?:(?:your|client|sending|source|originating|connecting) (?:smtp |mail )?"
    r"(?P<what>host ?name|host|server|ip(?: address)?|mx|mta)|(?:helo|ehlo) (?:name|host ?name|domain)"
    # an IP address is never the recipient ("IP address not found", "Invalid IP address")
    r"|(?<![\w.-])ip(?:v[46])? address(?: " + _IPV4 + ")?"
    r"|(?:client|connecting) domain"
    # a host named by its IP address: the receiver's lookup of our IP ("Host 192.0.2.1 has no DNS record")
    r"|(?P<iphost>(?:host|client|server|mta|relay) " + _IPV4 + ")"
    r"|(?:host ?name|name|domain) you (?:gave|sent|used|provided|announced) (?:in|with|at) (?:the |your )?(?:helo|ehlo))\b"
    r"(?: \S+)?(?: (?:is|was))? " + _DOES_NOT_EXIST)
# ... and refused, listed or not authorised ("Client host rejected", "Your ISP is listed", "IP is
# not authorized", "192.0.2.1 was rejected"): our host, whatever the code (x.1.1, 521) says.
_OUR_MACHINE_REFUSED = lazy(
    r"(?:^|[^\w.-])(?:(?:your|the|sending|connecting|client|sender) )?(?:ip(?: address)?|client|host|isp|network"
    r"|" + _IPV4 + r")(?: (?:is|was|has been|have been))? "
    r"(?:(?:black|block|deny)?listed|blocked|banned|rejected|refused|denied|not (?:authori[sz]ed|allowed|permitted))\b")
# The relay our MTA hands mail to (a smart host) not found: our routing, failing every recipient
# alike, not the recipient's domain.
_OUR_RELAY = lazy(r"\b(?:smart ?host|relay ?host|outbound relay|upstream (?:relay|smtp server|mail server))"
                  r"(?: \S+)?(?: (?:is|was))? " + _DOES_NOT_EXIST)
# Step 1's subjects that decide the reason alone, in the order they are tried (after our host).
_OURS_NAMED = ((_OUR_MACHINE_REFUSED, "blocked", "refuses our host"),
               (_OUR_RELAY, "networkerror", "is our route out"),
               (_SENDER_SUBJECT, "rejected", "is about our sender"))
# "Does not accept mail FROM …": whatever follows "from" is on the sending side (us, our IP or
# domain, a class of senders), so the refusal is of our mail, not a domain that takes none (a 521 /
# 556 reply or x.1.10 read alone says notaccept, hard). Our host / IP -> blocked, our sender or
# domain -> rejected, a class of senders (external, unauthenticated) -> the recipient side's filter.
_NOT_ACCEPTED_FROM = lazy(
    r"(?:not|n.t|never|no longer) accept(?:s|ing|ed)? (?:any )?(?:e-?mails?|mails?|messages?|connections?)? ?from"
    r"(?P<whom>(?: \S+){1,3})")
_FOR_NOW = lazy(r"at (?:this|the) (?:time|moment)|\b(?:currently|temporarily|right now)\b|try (?:again )?later")
_MACHINE_WORDS = r"ip|ips|host|hosts|server|servers|network"
_FROM_OUR_MACHINES_RX = r"\b(?:" + _MACHINE_WORDS + r"|dynamic|country|countries|asn)\b"
_FROM_OUR_MACHINES = lazy(_FROM_OUR_MACHINES_RX)
# ... and our addresses or host named as the subject ("The From address is disabled", "Your
# bounce address is over quota", "The connecting host is locked", "Sender is disabled").
_OUR_ADDRESSES = lazy(r"\b(?:(?:the |your )?(?:sender|from|return-path|bounce|envelope|reply-to)(?: e-?mail)? address"
                      r"|your (?:return-path|bounce address)|(?:the )?connecting (?:host|ip|server|client)"
                      r"|client \[?\d{1,3}(?:\.\d{1,3}){3})\b|^\W*(?:\d{3}[ -])?(?:[\d.]+ )?(?:the )?sender\b")
_OUR_MACHINE = lazy(r"\b(?:" + _MACHINE_WORDS + r"|helo|ehlo|mta|client|certificate)\b")
_FROM_OUR_HOST = lazy(r"\byou\b|" + _FROM_OUR_MACHINES_RX)
_FROM_OUR_SENDER = lazy(r"\b(?:sender|domain|address)\b|@")
# ... unless the senders are a class the recipient's side refuses ("external senders",
# "unauthenticated senders"): its filter, not our sender.
_FROM_A_CLASS = lazy(r"\b(?:unauthenticated|external|outside)\b")
# ... and said by the receiving server itself ("I can't accept mail from you", "This server does not
# accept mail from your domain"): not the recipient's filter but the server refusing our host or
# sender. Searched in the words just before the negation (ends there: "ca" / "wo" of "can't").
_SERVER_SUBJECT = lazy(r"(?:^|[^\w'])(?:i|we|this (?:mail |e-?mail |smtp )?(?:server|host|system|site|mx|gateway|relay))"
                       r"(?:'m| am| are| is)?(?: do| does| can| will| ca| wo)? ?$")
# The refusal answered the greeting, HELO/EHLO or STARTTLS: no recipient had been named, so a "hard"
# wording there ("Invalid domain name", "Host not found" about our HELO name) is about us.
_AT_HELO = lazy(r"in reply to (?:helo|ehlo|starttls) command|after (?:helo|ehlo|starttls)\b|smtp stage: (?:helo|ehlo|connect)"
                r"|refused to talk to me|in reply to initial greeting|after initial connection|(?:helo|ehlo) (?:command )?(?:\[[^\]]*\] )?rejected")
# Said in so many words: the reply came after the message content. (Sendmail's ">>> DATA" note,
# "smtp stage: data", also carries RCPT refusals that PIPELINING reports late, so there only the
# generic wordings are read as a filter's.)
_END_OF_DATA_RX = (r"smtp stage: end of data|in (?:reply|response) to end of data|(?:after|at) (?:pipelined )?end of data"
                   # Gmail's older notices number the stage: "(state 18)" is end of DATA (wordings.md 1.1)
                   r"|\(state 18\)"
                   r"|(?:in reply to|after(?: pipelined)?) bdat\b|failed after i sent the message"
                   # the content named instead of the command ("after transfer of message data", 1&1's
                   # "for TEXT command", Postfix's "while sending message body")
                   r"|after (?:the )?message (?:body |data |content )?(?:was |had been )?(?:transmitted|transferred|sent)"
                   r"|after transfer of (?:the )?message (?:data|body|content)|for text command"
                   r"|while sending (?:the )?message (?:body|data|content)")
_END_OF_DATA = lazy(_END_OF_DATA_RX)
_AFTER_DATA = lazy(r"smtp stage: data|" + _END_OF_DATA_RX + r"|in (?:reply|response) to data\b|after (?:pipelined )?data\b"
                   r"|(?:during|while sending) data\b")


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: str
    hard: bool
    step: str            # "1-sender-side", "2-temporary-dns", "3-stage", "5-receiver", "6-doubt-soft", "rule"
    evidence: str = ""   # what the deciding step saw, and what the rule had seen


def sender_side_evidence(text: str) -> tuple[str, str]:
    """(reason, words) of the first sender-side evidence in `text` (lowercased), ("", "") if none."""
    m = _SENDER.search(text)    # removing links only takes evidence out (the PTR words are in _SENDER too)
    if m and any(mark in text for mark in URL_MARKS):
        text = _URL.sub(" ", text)
        m = _SENDER.search(text)
    if not m:
        return "", ""
    p = _PTR.search(text)   # a missing PTR is the cause the host refusal names
    if p:
        return "requireptr", p.group(0)
    # The joined pattern tries its alternatives in order at the leftmost position; so do the kinds.
    return next((name, k.group(0)) for name, rx in _sender_kinds() if (k := rx.match(text, m.start())))


@functools.cache
def _sender_kinds() -> tuple:
    """What: the first kind of sender-side evidence where _SENDER found some (built on first use)."""
    return tuple(zip((name for name, _ in SENDER_SIDE), fast_alternations([rx for _, rx in SENDER_SIDE])))


def temporary(status: str, reply: str) -> bool:
    """A 4.x.x status, or a 4xx reply under no status or only the generic x.0.0 (a DSN or
    accounting record that says 5.0.0 over the server's "450 … Domain not found")."""
    return status.startswith("4") or (reply.startswith("4") and (not status or status[1:] == ".0.0"))


def is_hard(reason: str, status: str = "", reply: str = "") -> bool:
    """taxonomy.md: userunknown/hostunknown/hasmoved/notaccept, and never under a temporary code."""
    return reason in HARD_REASONS and not temporary(status, reply)


def our_side(diag: str) -> re.Match | None:
    """Where the text names something of ours as its subject: our account, IP, domain, keys,
    certificate, HELO, our sender's / header addresses, the connecting host."""
    return _OUR_SIDE.search(diag) or _OUR_THINGS.search(diag) or _OUR_ADDRESSES.search(diag)


def _ours_refused(ours: re.Match) -> str:
    """What refusing something of ours (our_side) is: our host / IP / HELO blocked, else our sender."""
    return "blocked" if _OUR_MACHINE.search(ours.group(0)) else "rejected"


def _refused_side(whom: str) -> str:
    """Who "does not accept mail from <whom>" refuses: our sender (rejected), our host (blocked),
    or a class of senders the recipient's side turns away (filtered)."""
    if _FROM_OUR_SENDER.search(whom) and not _FROM_A_CLASS.search(whom):
        return "rejected"
    return "blocked" if _FROM_OUR_HOST.search(whom) else "filtered"


def decide(reason: str, rule: str, status: str, reply: str, diag: str, one_receiver: bool = False,
           code_only: bool = False) -> Verdict:
    """Apply steps 1, 2, 3 and 6 to the rule's `reason` (see the module docstring). `one_receiver`:
    the rule is written for one receiver (step 5), whose documented meaning step 6's doubts about
    the status code do not overrule. `code_only`: the rule read the codes only, not the text."""
    if reason in COUNTED_REASONS:
        ours = our_side(diag)
        if ours:    # "Your account has been suspended": ours, not the recipient's mailbox
            side, _ = sender_side_evidence(diag)
            return Verdict(side or _ours_refused(ours), False, "1-sender-side",
                           f"{ours.group(0)!r} is about our side, beats rule {rule} ({reason})")
        if code_only and reason == "mailboxfull" and not _MAILBOX_WORDS.search(diag):
            full = _SYSTEM_FULL.search(diag)
            if full:
                return Verdict("toomanyconn" if full.group("conn") else "systemfull", False, "1-sender-side",
                               f"{full.group(0)!r} is the receiving system's, beats rule {rule} (mailboxfull, "
                               f"code {status or reply or '-'})")
        if code_only and not _OWN_WORDS[reason].search(diag):
            # A status that says "mailbox full" / "disabled" (x.2.2, x.2.3, x.2.1) over a text
            # that names a block, spam, a rate or a policy and not the code's own meaning: the text
            # is the cause (step 1), and these reasons count toward suppression where a refusal of
            # our mail must not.
            side, words = sender_side_evidence(diag)
            if side:
                return Verdict(side, False, "1-sender-side",
                               f"sender-side {words!r} beats rule {rule} ({reason}, code {status or reply or '-'})")
            if reason == "suspend" and _WORDS.search(_CODES_AND_NOTES.sub(" ", diag)):
                # wordings.md §6: x.2.1 is a disabled mailbox only where the text says so; Exchange
                # writes it for its content filter, sendmail for an access-db refusal ("550 5.2.1
                # Message refused" is the recipient side's refusal, not a disabled account).
                return Verdict("filtered", False, "5-receiver",
                               f"code {status or reply or '-'} over a text that says no mailbox is disabled, "
                               f"against rule {rule} (suspend)")
    if reason not in HARD_REASONS:
        if reason == "filtered" and _GENERIC_UNKNOWN.search(diag):
            m = _AFTER_DATA.search(diag)
            if m:   # a rule written for this step decided it (e.g. text-unknown-after-data)
                return Verdict(reason, False, "3-stage", f"'user unknown' refused {m.group(0)!r}: rule {rule} agrees")
        refused_from = _NOT_ACCEPTED_FROM.search(diag) if reason == "filtered" else None
        if refused_from:
            whom = refused_from.group("whom")
            if _FROM_OUR_MACHINES.search(whom):
                # "We do not accept mail from your IP / servers / network": not a filter of the
                # recipient's (which turns away senders, "from you", "from your domain") but our host
                return Verdict("blocked", False, "1-sender-side",
                               f"{refused_from.group(0)!r}: a refusal of our host, beats rule {rule} ({reason})")
            side = _refused_side(whom)
            if side != "filtered" and _SERVER_SUBJECT.search(diag, max(0, refused_from.start() - 40),
                                                             refused_from.start()):
                return Verdict(side, False, "1-sender-side",
                               f"the server's own {refused_from.group(0)!r}: a refusal of what we send, "
                               f"beats rule {rule} ({reason})")
        return Verdict(reason, False, "rule")
    side, words = sender_side_evidence(diag)
    at_mail = _AT_MAIL.search(diag)
    if at_mail and not _AT_RCPT.search(diag):
        return Verdict(side or "rejected", False, "1-sender-side",
                       f"refused {at_mail.group(0)!r}, before any recipient was named, beats rule {rule} ({reason})")
    at_helo = _AT_HELO.search(diag)
    if at_helo and not _AT_RCPT.search(diag):
        protocol = reply.startswith("50") or status[1:4] == ".5."
        return Verdict(side or ("syntaxerror" if protocol else "blocked"), False, "1-sender-side",
                       f"refused {at_helo.group(0)!r}, before any recipient was named, beats rule {rule} ({reason})")
    if side:
        return Verdict(side, False, "1-sender-side",
                       f"sender-side {words!r} beats rule {rule} ({reason}, code {status or reply or '-'})")
    refused_from = _NOT_ACCEPTED_FROM.search(diag)
    if refused_from:
        return Verdict(_refused_side(refused_from.group("whom")), False, "1-sender-side",
                       f"{refused_from.group(0)!r}: a refusal of what we send, beats rule {rule} ({reason})")
    our_host = _OUR_HOST_SUBJECT.search(diag)
    if our_host:
        side = ("requireptr" if our_host.group("ptr") or our_host.group("iphost")
                or (our_host.group("what") or "").startswith("host") else "blocked")
        return Verdict(side, False, "1-sender-side",
                       f"{our_host.group(0)!r} is about our host, beats rule {rule} ({reason})")
    for pattern, side, what in _OURS_NAMED:
        m = pattern.search(diag)
        if m:
            return Verdict(side, False, "1-sender-side", f"{m.group(0).strip()!r} {what}, beats rule {rule} ({reason})")
    localised = _OURS_LOCALISED.search(diag)
    if localised:
        return Verdict("blocked" if localised.group("ip") else "rejected", False, "1-sender-side",
                       f"{localised.group(0)!r} is about our {'IP' if localised.group('ip') else 'sender'}, "
                       f"beats rule {rule} ({reason})")
    ours = our_side(diag)
    if ours:    # "Your IP is not listed in our whitelist", "Your API key is no longer valid"
        return Verdict(_ours_refused(ours), False, "1-sender-side",
                       f"{ours.group(0)!r} is ours, beats rule {rule} ({reason})")
    if reason == "notaccept":
        m = _FOR_NOW.search(diag)
        if m:   # "Not accepting mail at this time": a state of the server, not a domain that takes none
            return Verdict("systemerror", False, "6-doubt-soft", f"{m.group(0)!r} beats rule {rule} (notaccept)")
    if reason in ("hostunknown", "notaccept"):
        # The temporary wording must be about the lookup: near the DNS words when there are some
        # (a flattened transcript may carry another host's "timed out" further on).
        at = _DNS_FAILURE.search(diag)
        m = _TRY_AGAIN.search(diag, max(0, at.start() - 60), at.end() + 120) if at else _TRY_AGAIN.search(diag)
        if not m and (at or _LOOKUP_WORDS.search(diag)):
            m = _TRY_AGAIN_DNS.search(diag)
        if m or (reason == "hostunknown" and temporary(status, reply)):
            why = f"{m.group(0)!r}" if m else f"temporary code {status or reply}"
            return Verdict("networkerror", False, "2-temporary-dns", f"{why} beats rule {rule} ({reason})")
    if reason == "userunknown" and not status.endswith(".1.1"):
        m = _AFTER_DATA.search(diag)
        if m and (_GENERIC_UNKNOWN.search(diag) or _END_OF_DATA.search(diag)):
            return Verdict("filtered", False, "3-stage",
                           f"refused {m.group(0)!r} (status {status or '-'}, not x.1.1) beats rule {rule} (userunknown)")
    if temporary(status, reply):
        return Verdict(reason, False, "6-doubt-soft", f"temporary code {status or reply}: not hard")
    if reason in ("userunknown", "hasmoved"):
        m = _STILL_TRYING.search(diag)
        if m:   # "User unknown; try again later": the receiver itself is not sure, so neither are we
            return Verdict(reason, False, "6-doubt-soft", f"{m.group(0)!r}: the receiver says it is not final")
    if code_only:
        m = _OUR_MESSAGE_REFUSED.search(diag)
        if m:   # "550 5.1.1 Your mail was rejected": the text speaks of our message, only the code of the address
            return Verdict(reason, False, "6-doubt-soft",
                           f"{m.group(0)!r} is about our message; only the code {status or reply or '-'} "
                           f"({reason}) is about the address")
    if one_receiver:
        return Verdict(reason, True, "5-receiver", f"rule {rule} is the receiver's own meaning")
    if reason == "userunknown" and status[1:] in (".2.0", ".2.1") and not _AT_RCPT.search(diag):
        # The status says the mailbox exists (x.2.x) while the text says it does not, and no RCPT
        # stage says the refusal was about the address: soft.
        return Verdict("filtered" if status[1:] == ".2.0" else "suspend", False, "6-doubt-soft",
                       f"status {status} (mailbox exists), no RCPT stage, against rule {rule} (userunknown)")
    if reason == "userunknown" and status[1:3] == ".7" and not _AT_RCPT.search(diag) and _GENERIC_UNKNOWN.search(diag):
        # A generic "user unknown" under a security / policy status (x.7.x, "delivery not
        # authorised") and no RCPT stage: a filter's refusal worded as an unknown user (issue 12).
        return Verdict("filtered", False, "6-doubt-soft",
                       f"status {status} (security / policy), no RCPT stage, against rule {rule} (userunknown)")
    return Verdict(reason, True, "rule")


# The reasons of sender-side wording (taxonomy step 1): what we send, or how, was refused.
SENDER_SIDE_REASONS = frozenset({"rejected", "blocked", "badreputation", "requireptr", "spamdetected", "virusdetected",
                                 "contenterror", "policyviolation", "authfailure", "securityerror", "failedstarttls",
                                 "norelaying", "toomanyconn", "speeding", "notcompliantrfc", "syntaxerror", "mesgtoobig"})


def code_verdict_in_doubt(code_reason: str, v: Verdict, diag: str) -> bool:
    """Whether a verdict read from a code alone may yield to the wording: a hard one, or a counted
    one (which moves the recipient toward suppression) whose text does not say what the code says."""
    return v.hard or (v.reason == code_reason in COUNTED_REASONS and not _OWN_WORDS[code_reason].search(diag))


def text_over_code(v: Verdict, text_rule: str, code_rule: str, code_reason: str, code: str) -> Verdict:
    """The verdict of a wording rule that overrules a reason read from a code alone
    (code_verdict_in_doubt): step 1 when the wording is sender-side, else step 6 (in doubt, soft).
    A step the wording's own verdict took (a sender-side subject, a stage) is kept."""
    if v.step != "rule":
        return v
    step = "1-sender-side" if v.reason in SENDER_SIDE_REASONS else "6-doubt-soft"
    return Verdict(v.reason, v.hard, step,
                   f"wording rule {text_rule} ({v.reason}) beats rule {code_rule} ({code_reason}, code {code or '-'} alone)")


# A routing loop is refused at once (5.4.6, wordings.md 5), not a retry period running out:
# Domino "Maximum hop count exceeded. Message probably in a routing loop."
# (fixtures/dsn/domino-legacy-text-only.eml).
_LOOP_WORDS = lazy(r"routing loop|mail loop|hop count|too many hops|loop(?:ing)? detected|is looping")


def expired_by_action(reason: str, status: str, action: str, diag: str, reply: str = "") -> bool:
    """Step 4: `Action: failed` with a 4.x.x status is an expiry (the last deferral's code), unless
    the text names a cause of its own: only a connection-level failure (networkerror, not DNS) is
    read as the retry period running out. A final report whose only code is a 4xx reply (no
    enhanced status at all), or that has no code at all (no server answered: "Connection timed
    out"), is read the same way."""
    temporary = status.startswith("4.") or (not status and (reply.startswith("4") or not reply))
    if action.lower() == "expired":
        return True     # not an RFC 3464 action, but some senders (SendGrid) write it for a give-up
    low = diag.lower()
    return (action.lower() == "failed" and temporary and reason == "networkerror"
            and not _DNS_WORDS.search(low) and not _LOOP_WORDS.search(low))
