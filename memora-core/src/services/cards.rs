//! Turning due questions into review cards. Reveal highlights and Matching
//! pairs become four-option quiz cards (as the original), and — unlike the
//! original — Fill Blank, Sentence Builder and Quiz stages are reviewable
//! too. Fixes over the original (§7 #12, #13): only the first whole
//! occurrence of a Reveal word is blanked (and a sentence without the word
//! gets a trailing blank instead of an un-blanked question); distractors are
//! de-duplicated and never padded with "..."; cards of unpublished or
//! deleted content are skipped but their learner history is never deleted.

use crate::domain::{Lesson, Stage, StageConfig};
use crate::ids::{LessonId, QuestionId, SubjectId, TopicId};
use crate::util::SplitMix64;

use super::content::ContentIndex;

/// Card presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardKind {
    /// Multiple choice.
    Quiz,
    /// Sentence with blanks; answers in order.
    FillBlank,
    /// Order the words.
    SentenceBuilder,
    /// Free-form quiz config passed through.
    Custom,
}

impl CardKind {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardKind::Quiz => "quiz",
            CardKind::FillBlank => "fill_blank",
            CardKind::SentenceBuilder => "sentence_builder",
            CardKind::Custom => "custom",
        }
    }
}

/// One review card.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// The question id to answer with.
    pub id: QuestionId,
    /// Presentation.
    pub kind: CardKind,
    /// Question text.
    pub question: String,
    /// Correct answer (blanks joined by " | " for fill-blank).
    pub correct_answer: String,
    /// Options (shuffled; includes the correct answer for quiz cards).
    pub options: Vec<String>,
    /// Source stage type, lower-case ("reveal", "matching", …).
    pub origin: &'static str,
    /// Subject.
    pub subject: SubjectId,
    /// Topic.
    pub topic: Option<TopicId>,
    /// Lesson.
    pub lesson: LessonId,
    /// Raw config for custom cards.
    pub payload: Option<serde_json::Value>,
}

fn blank_first(sentence: &str, word: &str) -> String {
    match sentence.find(word) {
        Some(pos) => format!("{}____{}", &sentence[..pos], &sentence[pos + word.len()..]),
        None => format!("{sentence} ____"),
    }
}

/// Up to three distinct words of `pool` other than `correct`, in an order
/// drawn from `rng`. Works on borrowed words and copies only the three it
/// returns (a card is built for every card served).
fn pick_distractors(pool: Vec<&str>, correct: &str, rng: &mut SplitMix64) -> Vec<String> {
    let mut seen: std::collections::HashSet<&str, foldhash::fast::RandomState> =
        std::collections::HashSet::with_capacity_and_hasher(pool.len(), Default::default());
    let mut uniq: Vec<&str> = pool
        .into_iter()
        .filter(|w| *w != correct && !w.trim().is_empty())
        .filter(|w| seen.insert(w))
        .collect();
    rng.shuffle(&mut uniq);
    uniq.truncate(3);
    uniq.into_iter().map(str::to_owned).collect()
}

fn quiz_options(correct: &str, distractors: Vec<String>, rng: &mut SplitMix64) -> Vec<String> {
    let mut options = distractors;
    options.push(correct.to_owned());
    rng.shuffle(&mut options);
    options
}

/// Builds the card for question `q`, or `None` if its content is gone or
/// unpublished. A whole-stage id of a Reveal/Matching stage shows one
/// element chosen by `seed` but keeps the whole-stage id, so the answer
/// updates the same tracker.
pub fn build_card(idx: &ContentIndex, q: &QuestionId, seed: u64) -> Option<Card> {
    let (subject, topic, lesson, stage) = idx.question_placement(q)?;
    if !lesson.is_published {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let base = |kind, question, correct_answer, options, origin| Card {
        id: q.clone(),
        kind,
        question,
        correct_answer,
        options,
        origin,
        subject: subject.clone(),
        topic: topic.clone(),
        lesson: lesson.id.clone(),
        payload: None,
    };
    match &stage.config {
        StageConfig::Reveal {
            sentence,
            highlights,
            ..
        } => {
            if highlights.is_empty() {
                return None;
            }
            let i = q
                .index()
                .map(|i| i as usize)
                .unwrap_or_else(|| rng.below(highlights.len()));
            let h = highlights.get(i)?;
            let pool = reveal_words(lesson);
            let distractors = pick_distractors(pool, &h.word, &mut rng);
            Some(base(
                CardKind::Quiz,
                blank_first(sentence, &h.word),
                h.word.clone(),
                quiz_options(&h.word, distractors, &mut rng),
                "reveal",
            ))
        }
        StageConfig::Matching { pairs, .. } => {
            if pairs.is_empty() {
                return None;
            }
            let i = q
                .index()
                .map(|i| i as usize)
                .unwrap_or_else(|| rng.below(pairs.len()));
            let p = pairs.get(i)?;
            let pool = pairs.iter().map(|x| x.left.as_str()).collect();
            let distractors = pick_distractors(pool, &p.left, &mut rng);
            Some(base(
                CardKind::Quiz,
                format!("ما هو المرادف لـ: {}؟", p.right),
                p.left.clone(),
                quiz_options(&p.left, distractors, &mut rng),
                "matching",
            ))
        }
        StageConfig::FillBlank {
            sentence,
            blanks,
            distractors,
            ..
        } => {
            let mut question = sentence.clone();
            for b in blanks {
                question = question.replacen(&format!("{{{b}}}"), "____", 1);
            }
            let mut options: Vec<String> = blanks.iter().chain(distractors).cloned().collect();
            options.dedup();
            rng.shuffle(&mut options);
            Some(base(
                CardKind::FillBlank,
                question,
                blanks.join(" | "),
                options,
                "fill_blank",
            ))
        }
        StageConfig::SentenceBuilder {
            instruction,
            sentence,
            words,
        } => {
            let mut options = words.clone();
            rng.shuffle(&mut options);
            Some(base(
                CardKind::SentenceBuilder,
                instruction.clone().unwrap_or_else(|| stage_title(stage)),
                sentence.clone(),
                options,
                "sentence_builder",
            ))
        }
        StageConfig::Quiz(config) => {
            let mut card = base(
                CardKind::Custom,
                config
                    .get("question")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| stage_title(stage)),
                config
                    .get("correct_answer")
                    .or_else(|| config.get("answer"))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                config
                    .get("options")
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                "quiz",
            );
            card.payload = Some(config.clone());
            Some(card)
        }
    }
}

fn stage_title(stage: &Stage) -> String {
    stage.title.clone()
}

fn reveal_words(lesson: &Lesson) -> Vec<&str> {
    lesson
        .stages
        .iter()
        .filter_map(|s| match &s.config {
            StageConfig::Reveal { highlights, .. } => {
                Some(highlights.iter().map(|h| h.word.as_str()))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_only_the_first_occurrence() {
        assert_eq!(blank_first("a b a", "a"), "____ b a");
        assert_eq!(blank_first("x y", "z"), "x y ____");
    }

    #[test]
    fn distractors_are_unique_and_exclude_the_answer() {
        let mut rng = SplitMix64::new(1);
        let d = pick_distractors(vec!["a", "b", "b", "c", "ans"], "ans", &mut rng);
        assert_eq!(d.len(), 3);
        assert!(!d.contains(&"ans".to_string()));
        let set: std::collections::HashSet<_> = d.iter().collect();
        assert_eq!(set.len(), 3);
    }

    /// The borrowed version picks exactly what the owning one it replaced
    /// picked (cards are built from a seed and must not change).
    #[test]
    fn distractors_are_those_of_the_owning_version() {
        fn owning(pool: Vec<String>, correct: &str, rng: &mut SplitMix64) -> Vec<String> {
            let mut seen = std::collections::HashSet::new();
            let mut uniq: Vec<String> = pool
                .into_iter()
                .filter(|w| w != correct && !w.trim().is_empty())
                .filter(|w| seen.insert(w.clone()))
                .collect();
            rng.shuffle(&mut uniq);
            uniq.truncate(3);
            uniq
        }
        let words = ["a", "b", "c", "d", " ", "", "e", "ans", "f", "g"];
        let mut pick = SplitMix64::new(7);
        for seed in 0..300u64 {
            let n = pick.below(12);
            let pool: Vec<&str> = (0..n).map(|_| words[pick.below(words.len())]).collect();
            let owned: Vec<String> = pool.iter().map(|w| (*w).to_owned()).collect();
            let (mut r1, mut r2) = (SplitMix64::new(seed), SplitMix64::new(seed));
            assert_eq!(
                pick_distractors(pool.clone(), "ans", &mut r1),
                owning(owned, "ans", &mut r2),
                "{pool:?}"
            );
            assert_eq!(r1.below(1000), r2.below(1000), "the same draws were made");
        }
    }
}
