//! The routing decision rules (docs/routing.md) and the lexical analyzer on a small
//! tenant like the perf workload's.

use std::collections::HashSet;

use switchyard_core::AgentId;
use switchyard_core::routing::{
    AgentProfile, AgentSet, Analysis, Candidate, Decision, Intent, LexicalConfig, LexicalIndex,
    Method, RouteError, RouteInput, RoutingPolicy, decide,
};
use uuid::Uuid;

fn id(n: u128) -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(n))
}

fn agent(n: u128, name: &str, priority: i32, is_fallback: bool) -> AgentProfile {
    AgentProfile {
        id: id(n),
        name: name.to_owned(),
        description: String::new(),
        intents: Vec::new(),
        keywords: Vec::new(),
        examples: Vec::new(),
        priority,
        is_fallback,
    }
}

/// A set of four agents: billing (1), tech (2), shipping (3), and general (9, the fallback).
fn set() -> AgentSet {
    AgentSet::new(vec![
        agent(1, "billing", 10, false),
        agent(2, "tech", 10, false),
        agent(3, "shipping", 10, false),
        agent(9, "general", 0, true),
    ])
}

/// An analysis with the given scores, in the order given.
fn analysis(scores: &[(u128, f64)]) -> Analysis {
    Analysis {
        analyzer: Method::Lexical,
        intent: Intent {
            category: None,
            confidence: scores.first().map_or(0.0, |s| s.1),
            keywords: Vec::new(),
        },
        candidates: scores
            .iter()
            .map(|&(n, score)| Candidate {
                agent_id: id(n),
                score,
            })
            .collect(),
    }
}

/// The decision over [`set`] with the default policy and no conversation.
fn decided(a: &Analysis) -> Decision {
    decide(&set(), a, &RoutingPolicy::default(), &RouteInput::default())
        .expect("the set has agents and nothing is pinned")
}

fn names(refs: &[switchyard_core::routing::AgentRef]) -> Vec<&str> {
    refs.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn pinned_agent_answers_without_failover() {
    let a = analysis(&[(1, 0.9), (2, 0.05), (3, 0.02), (9, 0.01)]);
    let input = RouteInput {
        pinned: Some(id(3)),
        ..RouteInput::default()
    };
    let d = decide(&set(), &a, &RoutingPolicy::default(), &input).unwrap();
    assert_eq!(d.agent_name, "shipping");
    assert_eq!(d.method, Method::Pinned);
    assert!(!d.fallback_used);
    assert!(d.failover.is_empty());
    assert_eq!(d.confidence, 1.0);
}

#[test]
fn pinning_an_agent_outside_the_index_is_an_error() {
    let a = analysis(&[(1, 0.9)]);
    let input = RouteInput {
        pinned: Some(id(77)),
        ..RouteInput::default()
    };
    assert_eq!(
        decide(&set(), &a, &RoutingPolicy::default(), &input),
        Err(RouteError::UnknownAgent(id(77)))
    );
}

#[test]
fn no_agents_is_an_error() {
    let empty = AgentSet::new(Vec::new());
    let err = decide(
        &empty,
        &analysis(&[]),
        &RoutingPolicy::default(),
        &RouteInput::default(),
    );
    assert_eq!(err, Err(RouteError::NoAgents));
    let index = LexicalIndex::build(Vec::new());
    let a = index.analyze("hello");
    assert!(a.candidates.is_empty());
    assert_eq!(a.intent.category, None);
    assert_eq!(
        index.decide(&a, &RoutingPolicy::default(), &RouteInput::default()),
        Err(RouteError::NoAgents)
    );
}

#[test]
fn a_clear_best_candidate_is_chosen_lexically() {
    let a = analysis(&[(2, 0.92), (1, 0.05), (3, 0.02), (9, 0.01)]);
    let d = decided(&a);
    assert_eq!(d.agent_name, "tech");
    assert_eq!(d.method, Method::Lexical);
    assert!((d.margin - 0.87).abs() < 1e-9);
    assert_eq!(d.confidence, 0.92);
    assert_eq!(
        d.alternatives
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["billing", "shipping", "general"]
    );
}

#[test]
fn low_confidence_goes_to_the_fallback_agent() {
    let a = analysis(&[(1, 0.35), (2, 0.1), (3, 0.05), (9, 0.02)]);
    let d = decided(&a);
    assert_eq!(d.agent_name, "general");
    assert_eq!(d.method, Method::Fallback);
    assert!(d.fallback_used);
    assert!(d.reason.contains("below min_confidence"), "{}", d.reason);
    assert_eq!(d.confidence, 0.02, "the fallback agent's own score");
}

/// The fallback agent's own examples are messages to refuse: matching them best is a
/// fallback, reported as one, not a confident match like any other agent's.
#[test]
fn a_best_match_with_the_fallback_agent_is_a_fallback() {
    let a = analysis(&[(9, 0.88), (1, 0.06), (2, 0.04), (3, 0.02)]);
    let d = decided(&a);
    assert_eq!(d.agent_name, "general");
    assert_eq!(d.method, Method::Fallback);
    assert!(d.fallback_used);
    assert_eq!(d.confidence, 0.88);
    assert!(
        d.reason.contains("fallback agent's own examples"),
        "{}",
        d.reason
    );
    assert_eq!(
        names(&d.failover),
        Vec::<&str>::new(),
        "nothing above it to try"
    );

    // The language model's choice of the fallback agent is not a match of its examples.
    let mut chosen = analysis(&[(9, 0.9), (1, 0.05)]);
    chosen.analyzer = Method::Llm;
    let d = decided(&chosen);
    assert_eq!(d.method, Method::Fallback);
    assert!(
        d.reason.starts_with("the model chose the fallback agent"),
        "{}",
        d.reason
    );
}

#[test]
fn a_too_small_margin_goes_to_the_fallback_agent() {
    let a = analysis(&[(1, 0.52), (2, 0.46), (3, 0.01), (9, 0.01)]);
    let d = decided(&a);
    assert_eq!(d.method, Method::Fallback);
    assert_eq!(d.agent_name, "general");
    assert!(d.reason.contains("min_margin"), "{}", d.reason);
    // Both close candidates were above min_confidence? Only billing is: it is the failover.
    assert_eq!(names(&d.failover), ["billing"]);
}

#[test]
fn without_a_fallback_agent_the_best_candidate_answers_and_says_so() {
    let set = AgentSet::new(vec![
        agent(1, "billing", 10, false),
        agent(2, "tech", 10, false),
    ]);
    let a = analysis(&[(1, 0.3), (2, 0.2)]);
    let d = decide(&set, &a, &RoutingPolicy::default(), &RouteInput::default()).unwrap();
    assert_eq!(d.agent_name, "billing");
    assert_eq!(d.method, Method::Lexical);
    assert!(!d.fallback_used);
    assert!(
        d.reason.contains("no available fallback agent"),
        "{}",
        d.reason
    );
    assert!(d.failover.is_empty());
}

#[test]
fn a_neutral_follow_up_stays_with_the_last_agent() {
    // "yes, please": nothing stands out, which alone would go to the fallback agent.
    let a = analysis(&[(9, 0.3), (1, 0.2), (2, 0.2), (3, 0.1)]);
    let input = RouteInput {
        last_agent: Some(id(3)),
        ..RouteInput::default()
    };
    let d = decide(&set(), &a, &RoutingPolicy::default(), &input).unwrap();
    assert_eq!(d.agent_name, "shipping");
    assert_eq!(d.method, Method::Sticky);
    assert!(!d.fallback_used);
    assert_eq!(names(&d.failover), ["general"]);
}

#[test]
fn a_follow_up_stays_unless_another_agent_is_clearly_better() {
    let policy = RoutingPolicy::default();
    let follow_up = RouteInput {
        last_agent: Some(id(1)),
        ..RouteInput::default()
    };
    // Confident, but not ahead of billing by more than switch_margin (0.3): stays.
    let a = analysis(&[(2, 0.6), (1, 0.35), (3, 0.03), (9, 0.02)]);
    let d = decide(&set(), &a, &policy, &follow_up).unwrap();
    assert_eq!(
        (d.agent_name.as_str(), d.method),
        ("billing", Method::Sticky)
    );
    // Confident and clearly ahead: switches, lexically.
    let a = analysis(&[(2, 0.9), (1, 0.05), (3, 0.03), (9, 0.02)]);
    let d = decide(&set(), &a, &policy, &follow_up).unwrap();
    assert_eq!((d.agent_name.as_str(), d.method), ("tech", Method::Lexical));
    assert!(d.reason.contains("switched"), "{}", d.reason);
    // Far ahead but not confident: stays.
    let a = analysis(&[(2, 0.45), (1, 0.1), (3, 0.03), (9, 0.02)]);
    let d = decide(&set(), &a, &policy, &follow_up).unwrap();
    assert_eq!(d.method, Method::Sticky);
    // The last agent is itself the confident best: an ordinary lexical decision.
    let a = analysis(&[(1, 0.9), (2, 0.05), (3, 0.03), (9, 0.02)]);
    let d = decide(&set(), &a, &policy, &follow_up).unwrap();
    assert_eq!(
        (d.agent_name.as_str(), d.method),
        ("billing", Method::Lexical)
    );
}

#[test]
fn a_last_agent_that_is_gone_or_unavailable_is_not_sticky() {
    let a = analysis(&[(2, 0.9), (1, 0.05), (3, 0.03), (9, 0.02)]);
    let gone = RouteInput {
        last_agent: Some(id(55)),
        ..RouteInput::default()
    };
    let d = decide(&set(), &a, &RoutingPolicy::default(), &gone).unwrap();
    assert_eq!(d.method, Method::Lexical);
    let down = |a: AgentId| (a == id(1)).then(|| "circuit open".to_owned());
    let unavailable = RouteInput {
        last_agent: Some(id(1)),
        unavailable: &down,
        ..RouteInput::default()
    };
    let a = analysis(&[(9, 0.3), (1, 0.2), (2, 0.2), (3, 0.1)]);
    let d = decide(&set(), &a, &RoutingPolicy::default(), &unavailable).unwrap();
    assert_eq!(d.method, Method::Fallback);
    assert_eq!(d.agent_name, "general");
    assert_eq!(
        d.skipped
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["billing"],
        "the conversation's own agent was passed over, and says so"
    );
    assert!(
        d.reason.contains("billing skipped: circuit open"),
        "{}",
        d.reason
    );
}

/// The decision is made as if unavailable agents were there: the best match being down
/// sends the turn down the failover list, names it, and keeps the analysis' confidence.
#[test]
fn unavailable_agents_are_skipped_named_and_never_failed_over_to() {
    let policy = RoutingPolicy {
        min_confidence: 0.2,
        ..RoutingPolicy::default()
    };
    let a = analysis(&[(1, 0.5), (2, 0.25), (3, 0.22), (9, 0.03)]);
    let down: HashSet<AgentId> = [id(1), id(3)].into();
    let unavailable = |a: AgentId| down.contains(&a).then(|| "circuit open".to_owned());
    let input = RouteInput {
        unavailable: &unavailable,
        ..RouteInput::default()
    };
    let d = decide(&set(), &a, &policy, &input).unwrap();
    assert_eq!(d.agent_name, "tech");
    assert_eq!(d.method, Method::Lexical);
    assert!(
        (d.confidence - 0.5).abs() < 1e-9,
        "the analysis' confidence"
    );
    assert!((d.margin - 0.25).abs() < 1e-9, "margin over every agent");
    assert_eq!(
        d.skipped
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["billing"]
    );
    assert_eq!(
        d.failover_from.as_ref().map(|f| f.name.as_str()),
        Some("billing")
    );
    assert!(
        d.reason.contains("billing skipped: circuit open"),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("tech answers instead"), "{}", d.reason);
    assert_eq!(names(&d.failover), ["general"], "shipping is down too");
    assert!(d.alternatives.iter().all(|x| !down.contains(&x.agent_id)));

    let all_down = |_: AgentId| Some("circuit open".to_owned());
    let input = RouteInput {
        unavailable: &all_down,
        ..RouteInput::default()
    };
    assert_eq!(
        decide(&set(), &a, &policy, &input),
        Err(RouteError::NoneAvailable)
    );
}

/// A confident match that is down does not make a weak one look best: the fallback agent
/// answers, and a follow-up does not stay with its last agent because the better one is
/// down.
#[test]
fn a_down_best_match_goes_to_the_fallback_not_to_the_last_agent() {
    let a = analysis(&[(1, 0.9996), (2, 0.0002), (3, 0.0001), (9, 0.0001)]);
    let down = |a: AgentId| (a == id(1)).then(|| "circuit open".to_owned());
    for last_agent in [None, Some(id(3))] {
        let input = RouteInput {
            last_agent,
            unavailable: &down,
            ..RouteInput::default()
        };
        let d = decide(&set(), &a, &RoutingPolicy::default(), &input).unwrap();
        assert_eq!(d.agent_name, "general", "last agent {last_agent:?}");
        assert_eq!(d.method, Method::Fallback);
        assert!(d.fallback_used);
        assert!(
            d.confidence > 0.99,
            "the analysis' confidence, not the fallback's"
        );
        assert_eq!(d.skipped.len(), 1);
        assert_eq!(d.skipped[0].name, "billing");
        assert!(d.reason.contains("billing skipped"), "{}", d.reason);
    }
    // Nothing down: no skipped agents, nothing changed.
    let d = decided(&a);
    assert_eq!(d.agent_name, "billing");
    assert!(d.skipped.is_empty() && d.failover_from.is_none());
}

#[test]
fn the_fallback_agent_is_skipped_when_unavailable() {
    let a = analysis(&[(1, 0.3), (2, 0.1), (3, 0.05), (9, 0.02)]);
    let down = |a: AgentId| (a == id(9)).then(|| "circuit open".to_owned());
    let input = RouteInput {
        unavailable: &down,
        ..RouteInput::default()
    };
    let d = decide(&set(), &a, &RoutingPolicy::default(), &input).unwrap();
    assert_eq!(d.agent_name, "billing");
    assert!(!d.fallback_used);
    assert_eq!(d.skipped[0].name, "general");
}

#[test]
fn equal_scores_go_to_the_higher_priority_then_the_first_agent() {
    let set = AgentSet::new(vec![
        agent(1, "low", 1, false),
        agent(2, "high", 5, false),
        agent(3, "high_too", 5, false),
    ]);
    let policy = RoutingPolicy {
        min_margin: 0.0,
        ..RoutingPolicy::default()
    };
    let a = analysis(&[(1, 0.6), (3, 0.6), (2, 0.6)]);
    let d = decide(&set, &a, &policy, &RouteInput::default()).unwrap();
    assert_eq!(d.agent_name, "high");
    assert_eq!(d.alternatives[0].name, "high_too");

    // The lexical analyzer ranks exact ties the same way.
    let twin = |n: u128, name: &str, priority: i32| AgentProfile {
        keywords: vec!["refund".to_owned()],
        ..agent(n, name, priority, false)
    };
    let index = LexicalIndex::build(vec![twin(1, "a", 1), twin(2, "b", 5), twin(3, "c", 5)]);
    let ranked: Vec<AgentId> = index
        .analyze("refund")
        .candidates
        .iter()
        .map(|c| c.agent_id)
        .collect();
    let order: Vec<&str> = ranked
        .iter()
        .map(|&i| index.agent_set().get(i).unwrap().name.as_str())
        .collect();
    // Names differ, so scores may differ slightly; among exact ties priority wins.
    let scores: Vec<f64> = index
        .analyze("refund")
        .candidates
        .iter()
        .map(|c| c.score)
        .collect();
    if scores[0] == scores[1] && scores[1] == scores[2] {
        assert_eq!(order, ["b", "c", "a"]);
    }
}

#[test]
fn failover_lists_confident_candidates_in_order_then_the_fallback_agent() {
    let set = AgentSet::new(vec![
        agent(1, "billing", 10, false),
        agent(2, "tech", 10, false),
        agent(3, "shipping", 10, false),
        agent(4, "sales", 10, false),
        agent(9, "general", 0, true),
    ]);
    let policy = RoutingPolicy {
        min_confidence: 0.1,
        min_margin: 0.05,
        ..RoutingPolicy::default()
    };
    let a = analysis(&[(4, 0.05), (1, 0.45), (3, 0.15), (2, 0.3), (9, 0.05)]);
    let d = decide(&set, &a, &policy, &RouteInput::default()).unwrap();
    assert_eq!(d.agent_name, "billing");
    assert_eq!(names(&d.failover), ["tech", "shipping", "general"]);
}

#[test]
fn a_decision_serialises_to_the_routing_object() {
    let a = analysis(&[(2, 0.92), (1, 0.05), (3, 0.02), (9, 0.01)]);
    let d = decided(&a);
    let v = serde_json::to_value(&d).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "alternatives",
            "confidence",
            "failover_from",
            "fallback_used",
            "margin",
            "method",
            "reason",
            "skipped"
        ]
    );
    assert_eq!(v["skipped"], serde_json::json!([]));
    assert_eq!(v["method"], "lexical");
    assert_eq!(v["failover_from"], serde_json::Value::Null);
    let alt = &v["alternatives"][0];
    assert_eq!(alt["name"], "billing");
    assert_eq!(alt["agent_id"], id(1).to_string());
    assert_eq!(alt["score"], 0.05);
    for m in [
        (Method::Pinned, "pinned"),
        (Method::Sticky, "sticky"),
        (Method::Embedding, "embedding"),
        (Method::Llm, "llm"),
        (Method::Fallback, "fallback"),
    ] {
        assert_eq!(serde_json::to_value(m.0).unwrap(), m.1);
    }
}

/// The perf workload's agent catalogue (shared/perf/agents.json).
fn perf_agents() -> Vec<AgentProfile> {
    let a = |n: u128,
             name: &str,
             description: &str,
             intent: &str,
             priority: i32,
             is_fallback: bool,
             keywords: &[&str],
             examples: &[&str]| AgentProfile {
        id: id(n),
        name: name.to_owned(),
        description: description.to_owned(),
        intents: vec![intent.to_owned()],
        keywords: keywords.iter().map(|s| (*s).to_owned()).collect(),
        examples: examples.iter().map(|s| (*s).to_owned()).collect(),
        priority,
        is_fallback,
    };
    vec![
        a(
            1,
            "billing",
            "Invoices, payments, refunds and subscriptions",
            "billing",
            10,
            false,
            &[
                "invoice",
                "payment",
                "refund",
                "charge",
                "charged",
                "bill",
                "billing",
                "subscription",
                "card",
            ],
            &[
                "I was charged twice on my card",
                "Where is my invoice for March?",
            ],
        ),
        a(
            2,
            "tech_support",
            "Errors, crashes, installation and login problems",
            "technical",
            10,
            false,
            &[
                "error", "crash", "crashes", "bug", "install", "login", "password", "reset",
                "broken", "app",
            ],
            &[
                "The app crashes when I log in",
                "How do I reset my password?",
            ],
        ),
        a(
            3,
            "shipping",
            "Deliveries, parcels and order tracking",
            "shipping",
            10,
            false,
            &[
                "delivery", "package", "parcel", "tracking", "shipment", "shipping", "order",
                "courier", "late",
            ],
            &[
                "My package is late",
                "Can I get a tracking number for my order?",
            ],
        ),
        a(
            4,
            "account",
            "Profile, e-mail address, settings and account closure",
            "account",
            10,
            false,
            &[
                "profile", "email", "settings", "account", "username", "delete", "close", "address",
            ],
            &[
                "Change the email address on my account",
                "Please delete my account",
            ],
        ),
        a(
            5,
            "sales",
            "Quotes, plans, upgrades and discounts",
            "sales",
            10,
            false,
            &[
                "quote",
                "pricing",
                "plan",
                "upgrade",
                "demo",
                "discount",
                "enterprise",
                "seats",
            ],
            &[
                "Can I get a quote for 50 seats?",
                "Is there a discount for the enterprise plan?",
            ],
        ),
        a(
            6,
            "legal",
            "Contracts, privacy, GDPR and compliance",
            "legal",
            10,
            false,
            &[
                "contract",
                "gdpr",
                "privacy",
                "terms",
                "compliance",
                "dpa",
                "legal",
                "policy",
            ],
            &["Do you have a DPA for GDPR?", "Send me the contract terms"],
        ),
        a(
            7,
            "hr",
            "Vacation, payroll, leave and benefits",
            "hr",
            10,
            false,
            &[
                "vacation", "payroll", "leave", "benefits", "salary", "holiday", "payslip", "sick",
            ],
            &[
                "How many vacation days do I have left?",
                "My payslip is missing",
            ],
        ),
        a(
            8,
            "general",
            "General questions; answers when nothing else fits",
            "general",
            0,
            true,
            &["hello", "hi", "help", "question", "info", "thanks"],
            &["Hello, I have a question", "Thanks for the help"],
        ),
    ]
}

#[test]
fn the_perf_tenant_routes_its_obvious_messages_confidently() {
    let index = LexicalIndex::build(perf_agents());
    assert!(index.is_trained(), "a tenant this small trains inline");
    let policy = RoutingPolicy::default();
    // The perf scenario's messages (shared/perf/scenario.lua) with their obvious agent.
    let cases = [
        (
            "I was charged twice on my card this month, can you refund one payment?",
            "billing",
        ),
        (
            "Where can I download the invoice for my last bill?",
            "billing",
        ),
        ("My subscription renewed but the payment failed", "billing"),
        ("The app crashes every time I try to login", "tech_support"),
        ("I forgot my password, how do I reset it?", "tech_support"),
        (
            "There is an error when I install the desktop app",
            "tech_support",
        ),
        (
            "My package is late, the tracking page has not changed for days",
            "shipping",
        ),
        (
            "Can you give me the tracking number for order 4411?",
            "shipping",
        ),
        (
            "The courier left the parcel at the wrong address",
            "shipping",
        ),
        ("Please change the email address on my account", "account"),
        ("How do I delete my account and my profile?", "account"),
        ("I want to change my username in the settings", "account"),
        (
            "Can I get a quote for 40 seats on the enterprise plan?",
            "sales",
        ),
        (
            "Is there a discount if we upgrade to the yearly plan?",
            "sales",
        ),
        (
            "Could someone give us a demo of the pricing options?",
            "sales",
        ),
        ("Do you have a DPA for GDPR compliance?", "legal"),
        (
            "Please send me the contract terms and the privacy policy",
            "legal",
        ),
        ("How many vacation days do I have left this year?", "hr"),
        ("My payslip for March is missing from payroll", "hr"),
        ("Can I take sick leave and what are the benefits?", "hr"),
        ("Hello, I have a question", "general"),
        ("Thanks for the help earlier", "general"),
        ("hi", "general"),
    ];
    let mut confident = 0;
    for (message, expected) in cases {
        let (analysis, d) = index
            .route(message, &policy, &RouteInput::default())
            .unwrap();
        println!(
            "{:.3} {expected:12} {message} {:?}",
            d.confidence, analysis.intent.keywords
        );
        assert_eq!(d.agent_name, expected, "{message}: {d:?}");
        if expected != "general" {
            assert_eq!(d.method, Method::Lexical, "{message}: {d:?}");
            assert!(!analysis.intent.keywords.is_empty(), "{message}");
            confident += usize::from(d.confidence >= 0.8);
        }
    }
    // Messages with several of an agent's keywords are confident; one that also names
    // another agent's keyword ("address") may be less so, but still routed.
    assert!(confident >= 16, "{confident} of 20 confident");
    let (analysis, _) = index
        .route(
            "The app crashes every time I try to login",
            &policy,
            &RouteInput::default(),
        )
        .unwrap();
    assert_eq!(analysis.intent.category.as_deref(), Some("technical"));
    assert!(analysis.intent.keywords.contains(&"crashes".to_owned()));
    assert!(!analysis.intent.keywords.contains(&"i".to_owned()));
    // Unrelated messages are not confident, and go to the fallback agent.
    for message in [
        "What is the weather like in Lisbon tomorrow?",
        "Tell me a joke about trains",
        "Could you summarise what we discussed so far and tell me what the next steps are for my open request?",
    ] {
        let (analysis, d) = index
            .route(message, &policy, &RouteInput::default())
            .unwrap();
        assert!(
            analysis.intent.confidence < 0.5,
            "{message}: {}",
            analysis.intent.confidence
        );
        assert_eq!(d.agent_name, "general", "{message}: {d:?}");
    }
    // A neutral follow-up stays with the conversation's agent.
    let follow_up = RouteInput {
        last_agent: Some(id(3)),
        ..RouteInput::default()
    };
    let (_, d) = index.route("yes, please", &policy, &follow_up).unwrap();
    assert_eq!(
        (d.agent_name.as_str(), d.method),
        ("shipping", Method::Sticky)
    );
    // ... unless the new message clearly belongs to another agent.
    let (_, d) = index
        .route(
            "I forgot my password, how do I reset it?",
            &policy,
            &follow_up,
        )
        .unwrap();
    assert_eq!(
        (d.agent_name.as_str(), d.method),
        ("tech_support", Method::Lexical)
    );
}

#[test]
fn scores_are_probabilities_ranked_best_first() {
    let index = LexicalIndex::build(perf_agents());
    for message in ["refund my invoice", "hello", "zzz qqq", "", "🙂"] {
        let a = index.analyze(message);
        assert_eq!(a.candidates.len(), 8);
        let sum: f64 = a.candidates.iter().map(|c| c.score).sum();
        assert!(sum <= 1.0 + 1e-6, "{message}: {sum}");
        assert!(a.candidates.windows(2).all(|w| w[0].score >= w[1].score));
        assert!((0.0..=1.0).contains(&a.intent.confidence));
        assert_eq!(a.candidates[0].score, a.intent.confidence);
    }
}

#[test]
fn an_agent_with_several_intents_reports_the_best_matching_one() {
    let mut agents = perf_agents();
    agents[0].intents = vec!["invoices".to_owned(), "refunds".to_owned()];
    let index = LexicalIndex::build(agents);
    let a = index.analyze("I want a refund for the double charge");
    assert_eq!(a.intent.category.as_deref(), Some("refunds"));
    let a = index.analyze("where is my invoice");
    assert_eq!(a.intent.category.as_deref(), Some("invoices"));
}

#[test]
fn an_index_is_shareable_across_threads_and_reports_its_size() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LexicalIndex>();
    let index = std::sync::Arc::new(LexicalIndex::build(perf_agents()));
    assert!(index.heap_size_bytes() > 10_000);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let index = index.clone();
            std::thread::spawn(move || index.analyze("my package is late").intent.category)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().as_deref(), Some("shipping"));
    }
}

#[test]
fn training_later_gives_the_same_model_as_training_at_once() {
    // Built untrained, as a large tenant is (the centroid model at once), then trained off
    // the request path: the same model as a tenant trained while it was built.
    let at_once = LexicalIndex::build(perf_agents());
    assert!(at_once.is_trained());
    let quick = LexicalIndex::build_with(
        perf_agents(),
        LexicalConfig {
            inline_training_budget: 0,
            ..LexicalConfig::default()
        },
    );
    assert!(!quick.is_trained(), "no budget: the centroid model");
    let later = quick.trained();
    assert!(later.is_trained());
    let messages = [
        "my parcel never arrived",
        "I was charged twice on my card",
        "how many vacation days do I have left?",
        "the VPN keeps dropping",
        "hello there",
    ];
    for m in messages {
        assert_eq!(at_once.analyze(m), later.analyze(m), "{m}");
    }
    assert!(
        messages
            .iter()
            .any(|m| quick.analyze(m) != later.analyze(m)),
        "training changed the model"
    );
}
