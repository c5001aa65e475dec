//! The map engine on a linear track (the demo's `hist-main`: unit hist-u1
//! with lessons l1–l3, then the topic-based hist-u2 with hist-t1 = l4, l5
//! and hist-t2 = l6, l7): the first unit is open, later ones are locked
//! until the previous one is completed — on every endpoint that shows the
//! track, and for everything inside a locked unit.

use memora_core::domain::Actor;
use memora_core::ids::*;
use memora_core::services::content::NodeStatus;

use crate::support::*;

use NodeStatus::{Available, Completed, Locked};

/// Statuses of the history subject on the map: (unit, status, [(topic, status, [lesson status])]).
type MapView = Vec<(
    String,
    NodeStatus,
    Vec<(String, NodeStatus, Vec<NodeStatus>)>,
)>;

async fn map(h: &H, who: &Actor) -> MapView {
    let history = SubjectId::new("history").unwrap();
    let map = h
        .app
        .learning()
        .get_map_data(who, Some(&history), None)
        .await
        .unwrap();
    assert_eq!(map.len(), 1);
    map[0]
        .units
        .iter()
        .map(|u| {
            (
                u.id.to_string(),
                u.status,
                u.topics
                    .iter()
                    .map(|t| {
                        (
                            t.id.clone(),
                            t.status,
                            t.lessons.iter().map(|l| l.status).collect(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

async fn track(h: &H, who: &Actor) -> Vec<(String, NodeStatus)> {
    h.app
        .learning()
        .get_track_details(who, None, Some(&TrackId::new("hist-main").unwrap()), None)
        .await
        .unwrap()
        .units
        .iter()
        .map(|u| (u.id.to_string(), u.status))
        .collect()
}

async fn unit_topics(h: &H, who: &Actor, unit: &str) -> Vec<(String, NodeStatus)> {
    h.app
        .learning()
        .get_unit_topics(who, &UnitId::new(unit).unwrap())
        .await
        .unwrap()
        .topics
        .iter()
        .map(|t| (t.id.clone(), t.status))
        .collect()
}

async fn topic_lessons(h: &H, who: &Actor, topic: &str) -> Vec<(String, NodeStatus)> {
    h.app
        .learning()
        .get_topic_details(who, topic)
        .await
        .unwrap()
        .lessons
        .iter()
        .map(|l| (l.id.to_string(), l.status))
        .collect()
}

fn pairs(v: &[(&str, NodeStatus)]) -> Vec<(String, NodeStatus)> {
    v.iter().map(|(a, s)| (a.to_string(), *s)).collect()
}

#[tokio::test]
async fn a_linear_track_opens_one_unit_after_the_other() {
    let h = harness().await;
    let me = h.fresh_student("map-walker").await;

    // Nothing done: the first unit and its first lesson are open, the rest
    // is locked — including the first topic of the locked second unit.
    assert_eq!(
        map(&h, &me).await,
        vec![
            (
                "hist-u1".into(),
                Available,
                vec![(
                    "hist-u1-default".into(),
                    Available,
                    vec![Available, Locked, Locked]
                )]
            ),
            (
                "hist-u2".into(),
                Locked,
                vec![
                    ("hist-t1".into(), Locked, vec![]),
                    ("hist-t2".into(), Locked, vec![])
                ]
            ),
        ]
    );
    assert_eq!(
        track(&h, &me).await,
        pairs(&[("hist-u1", Available), ("hist-u2", Locked)])
    );
    assert_eq!(
        unit_topics(&h, &me, "hist-u2").await,
        pairs(&[("hist-t1", Locked), ("hist-t2", Locked)])
    );
    assert_eq!(
        topic_lessons(&h, &me, "hist-t1").await,
        pairs(&[("hist-l4", Locked), ("hist-l5", Locked)])
    );
    assert_eq!(
        topic_lessons(&h, &me, "hist-u1-default").await,
        pairs(&[
            ("hist-l1", Available),
            ("hist-l2", Locked),
            ("hist-l3", Locked)
        ])
    );

    // Two of three lessons: the unit is still not completed.
    h.complete(&me, "hist-l1").await;
    h.complete(&me, "hist-l2").await;
    assert_eq!(
        topic_lessons(&h, &me, "hist-u1-default").await,
        pairs(&[
            ("hist-l1", Completed),
            ("hist-l2", Completed),
            ("hist-l3", Available)
        ])
    );
    assert_eq!(
        track(&h, &me).await,
        pairs(&[("hist-u1", Available), ("hist-u2", Locked)])
    );

    // The whole first unit: the second one opens, topic by topic.
    h.complete(&me, "hist-l3").await;
    assert_eq!(
        track(&h, &me).await,
        pairs(&[("hist-u1", Completed), ("hist-u2", Available)])
    );
    let m = map(&h, &me).await;
    assert_eq!(m[0].1, Completed);
    assert_eq!(
        (m[1].1, m[1].2[0].1, m[1].2[1].1),
        (Available, Available, Locked)
    );
    assert_eq!(
        unit_topics(&h, &me, "hist-u2").await,
        pairs(&[("hist-t1", Available), ("hist-t2", Locked)])
    );
    assert_eq!(
        topic_lessons(&h, &me, "hist-t1").await,
        pairs(&[("hist-l4", Available), ("hist-l5", Locked)])
    );
    assert_eq!(
        topic_lessons(&h, &me, "hist-t2").await,
        pairs(&[("hist-l6", Locked), ("hist-l7", Locked)])
    );

    h.complete(&me, "hist-l4").await;
    h.complete(&me, "hist-l5").await;
    assert_eq!(
        unit_topics(&h, &me, "hist-u2").await,
        pairs(&[("hist-t1", Completed), ("hist-t2", Available)])
    );
    assert_eq!(
        topic_lessons(&h, &me, "hist-t2").await,
        pairs(&[("hist-l6", Available), ("hist-l7", Locked)])
    );
}

#[tokio::test]
async fn a_non_linear_override_opens_every_unit() {
    let h = harness().await;
    let me = h.fresh_student("map-free").await;
    let free = h
        .app
        .learning()
        .get_track_details(
            &me,
            None,
            Some(&TrackId::new("hist-main").unwrap()),
            Some(false),
        )
        .await
        .unwrap();
    let statuses: Vec<NodeStatus> = free.units.iter().map(|u| u.status).collect();
    assert_eq!(statuses, vec![Available, Available]);
}

#[test]
fn the_locked_word_depends_on_the_endpoint() {
    assert_eq!(Locked.as_str(true), "locked_progression");
    assert_eq!(Locked.as_str(false), "locked");
    assert_eq!(Available.as_str(true), "available");
    assert_eq!(Completed.as_str(false), "completed");
}
