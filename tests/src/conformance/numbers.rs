//! [`CatalogNumbers`](memora_core::ports::CatalogNumbers): permanent numbers for question ids, subjects and
//! topics (the numbered Redis schedule's names for its cards and their
//! labels).

use std::collections::HashSet;

use memora_core::ids::{Label, QuestionId, SubjectId, TopicId};

use super::store::Stores;

fn qs(ids: &[&str]) -> Vec<QuestionId> {
    ids.iter()
        .map(|q| QuestionId::parse(q).expect("question id"))
        .collect()
}

/// New ids of one call get consecutive numbers in id order, from 1 on an
/// empty store; a number never changes, repeats in a call share it, and a
/// later call numbers only what is new.
pub async fn numbers_are_permanent_and_consecutive(s: &Stores) {
    let first = s
        .numbers
        .assign_numbers(&qs(&["stage-b", "stage-a:2", "stage-c", "stage-b"]))
        .await
        .expect("assign");
    // Id order: stage-a:2 < stage-b < stage-c.
    assert_eq!(first, vec![2, 1, 3, 2]);
    let again = s
        .numbers
        .assign_numbers(&qs(&["stage-c", "stage-d", "stage-a:2", "stage-0"]))
        .await
        .expect("assign again");
    assert_eq!(again[0], 3, "a number never changes");
    assert_eq!(again[2], 1);
    // The new ones follow, in id order: stage-0 < stage-d.
    assert_eq!((again[3], again[1]), (4, 5));
    assert_eq!(
        s.numbers.assign_numbers(&[]).await.expect("nothing"),
        Vec::<u64>::new()
    );
}

/// `find_numbers` answers without numbering anything.
pub async fn find_numbers_assigns_nothing(s: &Stores) {
    let n = s
        .numbers
        .assign_numbers(&qs(&["known"]))
        .await
        .expect("assign");
    let found = s
        .numbers
        .find_numbers(&qs(&["never", "known", "never"]))
        .await
        .expect("find");
    assert_eq!(found, vec![None, Some(n[0]), None]);
    // Still unnumbered: the next new id takes the next number.
    let next = s
        .numbers
        .assign_numbers(&qs(&["later"]))
        .await
        .expect("assign later");
    assert_eq!(next, vec![n[0] + 1], "find numbered nothing");
}

/// Numbers map back to their ids; unknown numbers are `None`.
pub async fn numbers_map_back(s: &Stores) {
    let ids = qs(&["x:1", "x:2", "y"]);
    let n = s.numbers.assign_numbers(&ids).await.expect("assign");
    let mut asked = n.clone();
    asked.push(n.iter().max().copied().unwrap_or(0) + 1000);
    asked.push(n[0]);
    let back = s.numbers.numbered_questions(&asked).await.expect("ids");
    assert_eq!(
        back,
        vec![
            Some(ids[0].clone()),
            Some(ids[1].clone()),
            Some(ids[2].clone()),
            None,
            Some(ids[0].clone())
        ]
    );
    assert!(
        s.numbers
            .numbered_questions(&[])
            .await
            .expect("none")
            .is_empty()
    );
}

/// Writers numbering overlapping ids at once agree: one number per id,
/// never one number for two ids.
pub async fn concurrent_assignment_agrees(s: &Stores) {
    let all: Vec<String> = (0..200).map(|i| format!("c{i:03}")).collect();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let numbers = s.numbers.clone();
        // Each writer: an overlapping window of the ids, in its own order.
        let mut mine: Vec<QuestionId> = all[w * 30..w * 30 + 110]
            .iter()
            .map(|q| QuestionId::parse(q).expect("id"))
            .collect();
        if w % 2 == 1 {
            mine.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let n = numbers.assign_numbers(&mine).await.expect("assign");
            mine.into_iter().zip(n).collect::<Vec<_>>()
        }));
    }
    let mut seen: std::collections::HashMap<QuestionId, u64> = Default::default();
    for t in tasks {
        for (q, n) in t.await.expect("task") {
            let prev = seen.insert(q.clone(), n);
            assert!(prev.is_none_or(|p| p == n), "{q} got {prev:?} and {n}");
        }
    }
    let distinct: HashSet<u64> = seen.values().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "two ids share a number");
    let ids: Vec<QuestionId> = seen.keys().cloned().collect();
    let found = s.numbers.find_numbers(&ids).await.expect("find");
    for (q, n) in ids.iter().zip(found) {
        assert_eq!(n, seen.get(q).copied(), "{q}");
    }
}

/// `numbered_after` pages through every numbered question in number order.
pub async fn numbered_after_pages_in_number_order(s: &Stores) {
    let ids = qs(&["pb", "pa", "pc", "pd"]);
    let n = s.numbers.assign_numbers(&ids).await.expect("assign");
    assert_eq!(n, vec![2, 1, 3, 4]);
    let page = |after, limit| {
        let numbers = s.numbers.clone();
        async move {
            numbers
                .numbered_after(after, limit)
                .await
                .expect("page")
                .into_iter()
                .map(|(n, q)| (n, q.as_str().to_owned()))
                .collect::<Vec<_>>()
        }
    };
    let name = |n: u64, q: &str| (n, q.to_owned());
    assert_eq!(
        page(0, 3).await,
        vec![name(1, "pa"), name(2, "pb"), name(3, "pc")]
    );
    assert_eq!(page(3, 3).await, vec![name(4, "pd")]);
    assert_eq!(page(4, 3).await, Vec::new());
    assert_eq!(page(1, 1).await, vec![name(2, "pb")]);
}

fn subject(id: &str) -> Label {
    Label::Subject(SubjectId::new(id).expect("subject id"))
}

fn topic(id: &str) -> Label {
    Label::Topic(TopicId::new(id).expect("topic id"))
}

/// Subjects and topics are numbered in a space of their own: from 1
/// whatever questions were numbered, new labels of one call in key order
/// (`s:…` before `t:…`), a subject and a topic of the same id apart, and
/// numbers permanent, found without numbering, and mapped back.
pub async fn labels_have_their_own_numbers(s: &Stores) {
    s.numbers
        .assign_numbers(&qs(&["q1", "q2", "q3"]))
        .await
        .expect("questions first");
    let first = s
        .numbers
        .assign_label_numbers(&[
            topic("math"),
            subject("math"),
            topic("algebra"),
            topic("math"),
        ])
        .await
        .expect("assign labels");
    // Key order: s:math < t:algebra < t:math.
    assert_eq!(
        first,
        vec![3, 1, 2, 3],
        "labels number from 1, apart from questions"
    );
    let found = s
        .numbers
        .find_label_numbers(&[subject("physics"), topic("algebra"), topic("physics")])
        .await
        .expect("find labels");
    assert_eq!(found, vec![None, Some(2), None]);
    let again = s
        .numbers
        .assign_label_numbers(&[subject("physics"), subject("math")])
        .await
        .expect("assign again");
    assert_eq!(
        again,
        vec![4, 1],
        "find numbered nothing; numbers never change"
    );
    let back = s
        .numbers
        .numbered_labels(&[4, 99, 3, 1])
        .await
        .expect("labels back");
    assert_eq!(
        back,
        vec![
            Some(subject("physics")),
            None,
            Some(topic("math")),
            Some(subject("math"))
        ]
    );
    let page = s.numbers.labels_numbered_after(1, 2).await.expect("page");
    assert_eq!(page, vec![(2, topic("algebra")), (3, topic("math"))]);
    assert!(
        s.numbers
            .labels_numbered_after(4, 10)
            .await
            .expect("end")
            .is_empty()
    );
    // The question space went on from where it was.
    assert_eq!(
        s.numbers.assign_numbers(&qs(&["q4"])).await.expect("q4"),
        vec![4]
    );
}
