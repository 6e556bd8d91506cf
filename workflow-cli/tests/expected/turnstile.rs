workflow! {
    pub workflow Turnstile {
        initial Locked;
        events { Coin, Push, Kick }
        state Locked {
            entry lock;
            on Coin if valid_coin => Unlocked;
            on Coin / reject_coin;
            on Push / beep;
        }
        state Unlocked {
            on Push => Locked;
            on Coin / refund;
            on Kick => Broken;
            after 10s => Locked;
        }
        final Broken;
    }
}
