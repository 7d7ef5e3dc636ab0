# The agent's console (tether-console).

# The Chat box.
chat-title = Chat
chat-everyone = Everyone
chat-representatives = Representatives
chat-export = Export
chat-export-hint = Save the transcript
chat-saving = Saving the transcript to { $path }
chat-larger = Larger text
chat-smaller = Smaller text
chat-to-whom = (to { $whom })
chat-to = To
chat-message = Message
chat-message-hint = Type a message
chat-send = Send
chat-not-sent = Not sent: { $why }
chat-scripted-messages = Scripted messages
chat-scripted-urls = Scripted URLs
chat-send-link = Send as link
chat-push-url = Push URL

# The right navigation.
nav-screen = Customer's Screen
nav-details = Details
nav-attendees = Attendees
nav-notes = Notes
nav-no-picture = No picture yet
nav-double-click = Double-click for the full-screen viewer
nav-session = Session
nav-came-through = Came through
nav-started = Started
nav-customer = Customer
nav-computer = Computer
nav-user = User
nav-system = System
nav-monitors = Monitors
nav-customer-mark = { $name } (customer)
nav-in-charge = in charge
nav-invited = invited
nav-masked = masked
nav-unmasked = unmasked
nav-you = you
nav-hidden = Hidden from the customer
nav-visible = The customer sees this name
nav-session-notes = Session notes
nav-notes-hint = Notes for the session record
nav-save-notes = Save notes
nav-not-saved = not saved
nav-saved-by = saved by { $who }

login-title = Tether Console
login-intro = Log in to your relay
login-relay = Relay (host:port)
login-fingerprint = Relay fingerprint
login-user = User
login-password = Password
login-button = Log in

home-title = Remote support
home-intro = Click "Generate session key" and give the Session PIN or the Session URL to your customer.
home-intro-queue = They wait in your queue below until you accept them.
home-pin = Session PIN
home-copy-pin = Copy PIN
home-copy-pin-hint = Copy the PIN to the clipboard
home-pin-copied = Session PIN copied to the clipboard
home-url = Session URL
home-copy-url = Copy URL
home-copy-url-hint = Copy the URL to the clipboard
home-url-copied = Session URL copied to the clipboard
home-expires = Expires
home-customer-runs = Customer runs
home-copy-command = Copy command
home-command-copied = Customer command copied to the clipboard

home-expired = expired
home-expires-in = in { $min } min

desk-logging-in = Logging in to { $relay } as { $user }…
desk-agent = Agent: { $display } ({ $login })
desk-relay = Relay { $relay }
desk-connection-lost = Connection lost: { $why }
desk-log-in-again = Log in again
desk-settings = Settings
desk-ready = Ready
desk-generate-key = Generate session key
desk-team = Team { $team }
desk-my-queue = My queue
desk-key-for = Key for
desk-home = Home
desk-home-waiting = Home ({ $n } waiting)
desk-users = Users: { $users }
desk-screen = Screen: { $screen }
