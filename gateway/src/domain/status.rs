//! Status enums and their allowed transitions (see ARCHITECTURE "Lifecycles").

macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// The stored and API spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the stored spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// An item's status.
    ItemStatus {
        /// Refused at intake; never enters the lifecycle.
        Rejected => "rejected",
        /// Accepted, not yet with the bank.
        Pending => "pending",
        /// Its part was accepted by the bank.
        Sent => "sent",
        /// Credited.
        Succeeded => "succeeded",
        /// Failed: to be corrected or returned.
        Failed => "failed",
        /// A final answer that needs an operator.
        Review => "review",
        /// Re-issued as a new item.
        Corrected => "corrected",
        /// Returned to the treasury.
        Returned => "returned",
    }
}

impl ItemStatus {
    /// Whether the bank has fed back for this item (final for the SLA).
    pub fn is_fed_back(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Review | Self::Corrected | Self::Returned
        )
    }

    /// Whether `self -> next` is an allowed transition.
    pub fn can_become(self, next: ItemStatus) -> bool {
        use ItemStatus::*;
        matches!(
            (self, next),
            (Pending, Sent)
                | (Sent, Succeeded | Failed | Review)
                | (Failed, Corrected | Returned)
                | (Review, Succeeded | Failed)
        )
    }
}

status_enum! {
    /// A part's (bank batch's) state.
    PartState {
        /// Not yet sent.
        Pending => "pending",
        /// Being sent now (under a lease).
        Sending => "sending",
        /// A send whose outcome is not known: resolved by a query, never by a blind resend.
        Unknown => "unknown",
        /// Accepted by the bank; results are polled.
        Accepted => "accepted",
        /// Every item has its final result.
        Final => "final",
        /// The bank refused it, or its results did not reconcile: an operator must look.
        Review => "review",
    }
}

impl PartState {
    /// The state as the platform API shows it (`pending|sent|accepted|final`, plus `review`).
    pub fn api_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending | Self::Unknown => "sent",
            Self::Accepted => "accepted",
            Self::Final => "final",
            Self::Review => "review",
        }
    }
}

status_enum! {
    /// A batch's status, derived from its parts and items.
    BatchStatus {
        /// Accepted, nothing with the bank yet.
        Accepted => "accepted",
        /// Some parts with the bank.
        Sending => "sending",
        /// Every part accepted by the bank.
        Sent => "sent",
        /// Every accepted item succeeded, failed or is in review.
        Final => "final",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_transitions() {
        assert!(ItemStatus::Pending.can_become(ItemStatus::Sent));
        assert!(ItemStatus::Failed.can_become(ItemStatus::Corrected));
        assert!(!ItemStatus::Succeeded.can_become(ItemStatus::Failed));
        assert!(!ItemStatus::Rejected.can_become(ItemStatus::Pending));
        assert_eq!(ItemStatus::parse("review"), Some(ItemStatus::Review));
        assert_eq!(PartState::Unknown.api_str(), "sent");
    }
}
