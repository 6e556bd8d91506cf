// `#[secret]` on payload fields: the payload's `Debug` (and so the event
// enum's) redacts them and shows the others; serde still sees every field.
use workflow::prelude::*;

workflow! {
    workflow Login {
        initial Start;
        events {
            Attempt { user: String, #[secret] password: String, #[secret] r#type: u8 },
            Logout,
        }
        state Start { on Attempt => Done; on Logout => Done; }
        final Done;
    }
}

fn main() {
    let attempt = Attempt {
        user: "ada".into(),
        password: "hunter2".into(),
        r#type: 7,
    };
    assert_eq!(
        format!("{attempt:?}"),
        r#"Attempt { user: "ada", password: [redacted], type: [redacted] }"#
    );
    let event: LoginEvent = attempt.clone().into();
    assert!(!format!("{event:?}").contains("hunter2"));
    let json = serde_json::to_string(&attempt).unwrap();
    assert!(json.contains("hunter2"));
}
