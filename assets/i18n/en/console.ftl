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
