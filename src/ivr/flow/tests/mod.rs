//! The flow in virtual time: the welcome, the lookup, the status and the menu.

mod harness;
mod transfer;

use std::time::Duration;

use harness::*;

use crate::config::MenuDefault;
use crate::ivr::flow::{Action, EndCause, FlowEvent};
use crate::ivr::outcome::{CallOutcome, PathStep, Step};
use crate::media::dtmf::DigitSource;
use crate::zendesk::model::{DipOutcome, Priority, Status};

const MENU: &str =
    "Press 1 to talk to an agent, or 2 to end the call. Press star to hear your ticket again.";
const KARI: &str = "Hello Kari. Your ticket 1 0 2, about Printer on fire, is being worked on.";

#[test]
fn dip_before_the_welcome_ends_goes_straight_to_the_status_and_menu() {
    let mut bench = Bench::new(settings(&config()));
    let actions = bench.event(FlowEvent::Answered);
    assert_eq!(spoken(&actions), vec!["file:audio/welcome.wav"]);
    let actions = bench.event(FlowEvent::Dip(kari(None)));
    let render = actions.iter().find_map(|a| match a {
        Action::Render(s) => Some(s.clone()),
        _ => None,
    });
    let render = render.expect("the status is rendered while the welcome plays");
    assert_eq!(render.text, KARI);
    assert_eq!(render.lang.as_str(), "en");
    bench.event(FlowEvent::Rendered { ok: true });
    let actions = bench.finish_play();
    assert_eq!(spoken(&actions), vec![KARI, MENU]);
    assert!(matches!(actions[0], Action::Play { barge_in: true, .. }));
}

#[test]
fn dip_during_the_comfort_line_waits_for_it_then_plays_the_status() {
    let mut bench = Bench::answered();
    let actions = bench.finish_play();
    assert_eq!(spoken(&actions), vec!["One moment while we look up your information."]);
    bench.advance(Duration::from_millis(300));
    let actions = bench.event(FlowEvent::Dip(DipOutcome::UnknownCaller));
    assert!(spoken(&actions).is_empty(), "the comfort line is not cut off");
    let actions = bench.finish_play();
    assert_eq!(
        spoken(&actions),
        vec!["We could not find an account for the number you are calling from.", MENU]
    );
}

#[test]
fn dip_after_the_comfort_line_plays_hold_music_until_it_answers() {
    let mut bench = Bench::answered();
    bench.finish_play();
    let actions = bench.finish_play();
    assert_eq!(actions, vec![Action::HoldMusic], "no silence while the lookup runs");
    bench.advance(Duration::from_millis(800));
    let actions = bench.event(FlowEvent::Dip(kari(Some(Priority::Urgent))));
    assert!(matches!(actions.as_slice(), [Action::Render(_)]), "the music goes on: {actions:?}");
    let actions = bench.event(FlowEvent::Rendered { ok: true });
    assert_eq!(spoken(&actions), vec![KARI, MENU]);
}

#[test]
fn a_dip_that_never_answers_falls_back_after_its_guard() {
    let mut bench = Bench::answered();
    bench.finish_play();
    bench.finish_play();
    // The default deadline is 1.5 s; the guard adds 0.5 s.
    let actions = bench.advance(Duration::from_millis(1_900));
    assert!(spoken(&actions).is_empty());
    let actions = bench.advance(Duration::from_millis(200));
    assert_eq!(spoken(&actions), vec!["We cannot look up your tickets right now.", MENU]);
    // A late answer changes nothing.
    assert!(bench.event(FlowEvent::Dip(kari(None))).is_empty());
}

#[test]
fn each_caller_kind_hears_its_own_sentence() {
    let norwegian = DipOutcome::Found {
        user: user("Ola Nordmann", Some("nb")),
        ticket: Some(ticket(7, Status::Pending, None, None)),
        greet_by_name: true,
    };
    let shared = DipOutcome::Found {
        user: user("Front Desk", None),
        ticket: Some(ticket(55, Status::Hold, None, Some("Key card"))),
        greet_by_name: false,
    };
    let no_ticket =
        DipOutcome::Found { user: user("Kari", None), ticket: None, greet_by_name: true };
    let no_ticket_shared =
        DipOutcome::Found { user: user("Desk", None), ticket: None, greet_by_name: false };
    let new_ticket = DipOutcome::Found {
        user: user("Kari", None),
        ticket: Some(ticket(3, Status::New, None, Some("Hi"))),
        greet_by_name: true,
    };
    let cases = [
        (kari(None), KARI),
        (norwegian, "Hei Ola. Saken din 7 er venter på svar fra deg."),
        (shared, "Your ticket 5 5, about Key card, is on hold."),
        (new_ticket, "Hello Kari. Your ticket 3, about Hi, is received."),
        (no_ticket, "Hello Kari. You have no open tickets with us."),
        (no_ticket_shared, "You have no open tickets with us."),
        (
            DipOutcome::UnknownCaller,
            "We could not find an account for the number you are calling from.",
        ),
        (DipOutcome::Anonymous, "Your number is hidden, so we cannot look up your tickets."),
        (fallback(), "We cannot look up your tickets right now."),
    ];
    for (outcome, sentence) in cases {
        let mut bench = Bench::answered();
        bench.event(FlowEvent::Dip(outcome.clone()));
        bench.event(FlowEvent::Rendered { ok: true });
        let actions = bench.finish_play();
        assert_eq!(spoken(&actions)[0], sentence, "{outcome:?}");
        assert!(!spoken(&actions)[0].contains("Front"), "a shared number is not greeted by name");
    }
}

#[test]
fn norwegian_callers_get_the_norwegian_menu() {
    let outcome = DipOutcome::Found {
        user: user("Ola", Some("no")),
        ticket: Some(ticket(7, Status::Open, None, Some("Faktura"))),
        greet_by_name: true,
    };
    let bench = Bench::to_menu(outcome);
    let said = spoken(&bench.log);
    assert_eq!(bench.flow.language().as_str(), "nb");
    assert_eq!(said[1], "Hei Ola. Saken din 7, om Faktura, er under behandling.");
    assert!(said[2].starts_with("Trykk 1"), "{said:?}");
}

#[test]
fn untrusted_subjects_are_cleaned_and_cut() {
    let outcome = DipOutcome::Found {
        user: user("<b>Eve</b>\r\nVia: x", None),
        ticket: Some(ticket(
            9,
            Status::Open,
            None,
            Some(&format!("\r\nVia: evil<speak>{}</speak>\u{7}", "a ".repeat(80))),
        )),
        greet_by_name: true,
    };
    let mut bench = Bench::answered();
    let actions = bench.event(FlowEvent::Dip(outcome));
    let Some(Action::Render(sentence)) = actions.first() else { panic!("{actions:?}") };
    assert!(!sentence.text.contains(['\r', '\n', '<', '>', '\u{7}']), "{:?}", sentence.text);
    assert!(
        sentence.text.starts_with("Hello Eve. Your ticket 9, about Via: evil a a"),
        "{}",
        sentence.text
    );
    assert!(sentence.text.len() < 160, "{}", sentence.text);
}

#[test]
fn a_failed_or_late_render_gets_the_generic_sentence() {
    let generic = "We have found your latest ticket.";
    let mut bench = Bench::answered();
    bench.event(FlowEvent::Dip(kari(None)));
    bench.event(FlowEvent::Rendered { ok: false });
    let actions = bench.finish_play();
    assert_eq!(spoken(&actions), vec![generic, MENU]);

    let mut bench = Bench::answered();
    bench.event(FlowEvent::Dip(kari(None)));
    let actions = bench.finish_play();
    assert_eq!(actions, vec![Action::HoldMusic], "music while the render is late");
    let actions = bench.advance(RENDER_TIMEOUT + Duration::from_millis(500));
    assert_eq!(spoken(&actions), vec![generic, MENU]);
    assert!(bench.event(FlowEvent::Rendered { ok: true }).is_empty(), "too late to matter");
}

#[test]
fn a_key_during_the_status_is_the_menu_choice() {
    let mut bench = Bench::answered();
    bench.event(FlowEvent::Dip(kari(None)));
    bench.event(FlowEvent::Rendered { ok: true });
    // Keys during the welcome do nothing.
    assert!(bench.press('2').is_empty());
    bench.advance(Duration::from_secs(1));
    bench.finish_play();
    let status = bench.last_play();
    let actions = bench.press('2');
    assert_eq!(spoken(&actions), vec!["Thank you for calling. Goodbye."]);
    // The barge-in's own "finished" is stale and changes nothing.
    assert!(bench.event(FlowEvent::PlaybackFinished { id: status, interrupted: true }).is_empty());
    let actions = bench.finish_play();
    assert_eq!(actions, vec![Action::Hangup]);
    let report = bench.end(EndCause::Us);
    assert_eq!(report.outcome, CallOutcome::EndedByCaller);
    assert_eq!(report.path, vec![PathStep::StatusHeard, PathStep::Pressed { key: '2' }]);
    assert_eq!(report.ivr_duration, Duration::from_secs(1));
}

#[test]
fn invalid_keys_and_silence_replay_the_menu_then_take_the_default() {
    let mut bench = Bench::to_menu(kari(None));
    let actions = bench.press('7');
    assert_eq!(spoken(&actions), vec!["Sorry, I did not get that.", MENU]);
    bench.finish_play();
    // Eight seconds of silence: sorry, and the menu again.
    assert!(bench.advance(Duration::from_millis(7_999)).is_empty());
    let actions = bench.advance(Duration::from_millis(1));
    assert_eq!(spoken(&actions), vec!["Sorry, I did not get that.", MENU]);
    bench.finish_play();
    // The third try runs out: the default is an agent.
    let actions = bench.advance(Duration::from_secs(8));
    assert_eq!(spoken(&actions), vec!["Connecting you to an agent."]);
    let report_path = {
        bench.finish_play();
        bench.end(EndCause::Caller).path
    };
    assert_eq!(
        report_path[..4],
        [
            PathStep::StatusHeard,
            PathStep::Invalid { key: '7' },
            PathStep::NoInput,
            PathStep::NoInput,
        ]
    );
}

#[test]
fn a_caller_who_presses_nothing_hears_the_menu_three_times_then_an_agent() {
    let mut bench = Bench::to_menu(kari(None));
    bench.finish_play();
    let mut menus = 1;
    for _ in 0..2 {
        let actions = bench.advance(Duration::from_secs(8));
        menus += spoken(&actions).iter().filter(|s| *s == MENU).count();
        bench.finish_play();
    }
    let actions = bench.advance(Duration::from_secs(8));
    assert_eq!(menus, 3);
    assert_eq!(spoken(&actions), vec!["Connecting you to an agent."]);
    let actions = bench.finish_play();
    assert_eq!(transfers(&actions)[0].target, "sip:support@10.0.0.1");
}

#[test]
fn the_default_can_be_to_hang_up() {
    let mut config = config();
    config.ivr.menu_default = MenuDefault::Hangup;
    config.ivr.menu_attempts = 1;
    let mut bench = Bench::new(settings(&config));
    bench.event(FlowEvent::Answered);
    bench.event(FlowEvent::Dip(DipOutcome::Anonymous));
    bench.finish_play();
    bench.finish_play();
    let actions = bench.advance(Duration::from_secs(8));
    assert_eq!(spoken(&actions), vec!["Thank you for calling. Goodbye."]);
    assert_eq!(bench.finish_play(), vec![Action::Hangup]);
    assert_eq!(bench.end(EndCause::Us).outcome, CallOutcome::NoInput);
}

#[test]
fn star_repeats_the_status() {
    let mut bench = Bench::to_menu(kari(None));
    let actions = bench.press('*');
    assert_eq!(spoken(&actions), vec![KARI, MENU]);
    bench.finish_play();
    // Repeating is not a failed try: two silences still leave one more try.
    bench.advance(Duration::from_secs(8));
    bench.finish_play();
    let actions = bench.advance(Duration::from_secs(8));
    assert_eq!(spoken(&actions), vec!["Sorry, I did not get that.", MENU]);
}

#[test]
fn a_key_sent_both_as_rtp_event_and_info_counts_once() {
    let mut bench = Bench::to_menu(kari(None));
    bench.event(FlowEvent::Digit { digit: '7', source: DigitSource::Rfc4733 });
    bench.advance(Duration::from_millis(100));
    let again = bench.event(FlowEvent::Digit { digit: '7', source: DigitSource::SipInfo });
    assert!(again.is_empty(), "{again:?}");
    // The same key later, or by the same method, is a new press.
    bench.advance(Duration::from_millis(100));
    let repeat = bench.event(FlowEvent::Digit { digit: '7', source: DigitSource::Rfc4733 });
    assert!(!repeat.is_empty());
}

#[test]
fn hanging_up_at_each_step_names_the_step() {
    let welcome = Bench::answered();
    let mut lookup = Bench::answered();
    lookup.finish_play();
    let mut status = Bench::answered();
    status.event(FlowEvent::Dip(DipOutcome::UnknownCaller));
    status.finish_play();
    let mut menu = Bench::to_menu(kari(None));
    menu.press('9');
    let mut transfer = Bench::to_menu(kari(None));
    transfer.press('1');
    let mut goodbye = Bench::to_menu(kari(None));
    goodbye.press('2');
    let ringing = Bench::new(settings(&config()));
    for (mut bench, step) in [
        (ringing, Step::Ringing),
        (welcome, Step::Welcome),
        (lookup, Step::Lookup),
        (status, Step::Status),
        (menu, Step::Menu),
        (transfer, Step::Transfer),
    ] {
        assert_eq!(bench.end(EndCause::Caller).outcome, CallOutcome::HungUp { step });
    }
    // The choice was made: hanging up during the goodbye keeps it.
    assert_eq!(goodbye.end(EndCause::Caller).outcome, CallOutcome::EndedByCaller);
}

#[test]
fn our_own_hang_ups_are_not_the_callers_choice() {
    let mut bench = Bench::to_menu(kari(None));
    assert_eq!(bench.event(FlowEvent::MediaTimeout), vec![Action::Hangup]);
    assert_eq!(
        bench.end(EndCause::Us).outcome,
        CallOutcome::Dropped { reason: crate::ivr::outcome::DropReason::NoMedia }
    );

    let mut config = config();
    config.sip.max_call_s = 60;
    let mut bench = Bench::new(settings(&config));
    bench.event(FlowEvent::Answered);
    bench.event(FlowEvent::Dip(DipOutcome::Anonymous));
    bench.finish_play();
    let actions = bench.advance(Duration::from_secs(60));
    assert!(actions.contains(&Action::Hangup), "{actions:?}");
    assert_eq!(
        bench.end(EndCause::Us).outcome,
        CallOutcome::Dropped { reason: crate::ivr::outcome::DropReason::TimeLimit }
    );
}

#[test]
fn a_menu_stopped_by_a_duplicate_key_still_waits_for_a_key() {
    let mut bench = Bench::to_menu(kari(None));
    bench.press('7');
    let sorry = bench.last_play();
    // The same key by INFO stops the new menu (barge-in) but is not a new press.
    assert!(bench.event(FlowEvent::Digit { digit: '7', source: DigitSource::SipInfo }).is_empty());
    bench.event(FlowEvent::PlaybackFinished { id: sorry, interrupted: true });
    let actions = bench.advance(Duration::from_secs(8));
    assert_eq!(spoken(&actions), vec!["Sorry, I did not get that.", MENU], "not stuck in silence");
}

#[test]
fn the_menu_names_the_configured_keys() {
    let mut config = config();
    config.ivr.key_agent = '5';
    config.ivr.key_end = '#';
    config.ivr.key_repeat = '0';
    let sentences = bench_static(&config);
    assert!(
        sentences.contains(&"Press 5 to talk to an agent, or pound to end the call. Press 0 to hear your ticket again.".to_string()),
        "{sentences:?}"
    );
}

fn bench_static(config: &crate::config::Config) -> Vec<String> {
    settings(config).prompts.static_sentences().into_iter().map(|(_, text)| text).collect()
}
