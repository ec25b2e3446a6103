// The wire shapes of the chatmux chat protocol (docs/protocol.md#objects,
// docs/protocol.md#events, docs/protocol.md#dispatches).

/** A user id. The server sends integers; it compares ids as ids, so "7" names user 7 too. */
export type UserId = number;

/** A room, message, reaction, notification or attachment id (a UUID string). */
export type Id = string;

/** A timestamp: RFC 3339 in UTC with microseconds, e.g. "2026-01-01T12:00:00.123456Z". */
export type Timestamp = string;

/** docs/protocol.md#user */
export interface User {
  id: UserId;
  username: string;
  email: string;
  first_name: string;
  last_name: string;
  /** true for a deleted user, absent otherwise (docs/protocol.md#deleted-users). */
  is_deleted?: boolean;
}

/** A read receipt inside a Message. */
export interface ReadReceipt {
  reader: User;
  read_at: Timestamp;
}

/** A reaction inside a Message. */
export interface Reaction {
  id: Id;
  user: User;
  reaction_content: string;
  created_at: Timestamp;
}

/** The kinds of attachment (docs/protocol.md#attachment). */
export type MediaType = 'image' | 'video' | 'audio' | 'file';

/** docs/protocol.md#attachment */
export interface Attachment {
  id: Id;
  media_url: string;
  media_type: MediaType;
  file_size: number;
  mime_type: string;
  caption: string | null;
  metadata: Record<string, unknown>;
}

/** An attachment to send with message.send (extra_fields.media). */
export interface NewAttachment {
  media_url: string;
  media_type: MediaType;
  file_size?: number;
  mime_type?: string;
  caption?: string;
  metadata?: Record<string, unknown>;
}

/** docs/protocol.md#message */
export interface Message {
  id: Id;
  room: { id: Id };
  /** null for a system message (docs/protocol.md#system-messages). */
  sender: User | null;
  /** true for a system message, absent otherwise. */
  is_system?: boolean;
  /** HTML from the allow-list of docs/protocol.md#content. */
  content: string;
  is_deleted: boolean;
  is_edited: boolean;
  is_forwarded: boolean;
  parent_message: Message | null;
  forwarded_from: Message | null;
  /** Usernames of the users who acknowledged the message. */
  delivered_to: string[];
  read_receipts: ReadReceipt[];
  reactions: Reaction[];
  attachments: Attachment[];
  created_at: Timestamp;
  updated_at: Timestamp;
  /** The message's number in its room: 1, 2, 3, ... (docs/protocol.md#seq). */
  seq: number;
  /** The sender's idempotency key, when it gave one (docs/protocol.md#idempotent-sends). */
  client_msg_id?: string;
  /** Host-registered extra fields appear as further keys. */
  [extra: string]: unknown;
}

/** The room types (docs/protocol.md#room-types). */
export type RoomType = 'OneToOneChat' | 'GroupChat' | 'Channel';

interface RoomCommon {
  id: Id;
  created_at: Timestamp;
  updated_at: Timestamp;
  property: { preferences: Record<string, unknown> };
}

/** A one-to-one chat's detail. */
export interface OneToOneDetail extends RoomCommon {
  type: 'OneToOneChat';
  participants: User[];
}

/** A group's detail. */
export interface GroupDetail extends RoomCommon {
  type: 'GroupChat';
  name: string;
  description: string | null;
  avatar: string | null;
  creator: User | null;
  participants: User[];
  admins: User[];
  max_participants: number;
  join_approval_required: boolean;
  group_locked: boolean;
}

/** A channel's detail. */
export interface ChannelDetail extends RoomCommon {
  type: 'Channel';
  name: string;
  description: string | null;
  avatar: string | null;
  creator: User | null;
  subscribers: User[];
  moderators: User[];
  is_public: boolean;
  max_subscribers: number;
}

/** docs/protocol.md#room-detail */
export type RoomDetail = OneToOneDetail | GroupDetail | ChannelDetail;

interface ListCommon {
  id: Id;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_message: Message | null;
  /** docs/protocol.md#unread-counts */
  unread_count: number;
}

/** docs/protocol.md#room-list-item */
export type RoomListItem =
  | (ListCommon & { type: 'OneToOneChat'; peer: User | null })
  | (ListCommon & {
      type: 'GroupChat';
      name: string;
      description: string | null;
      creator: User | null;
      max_participants: number;
      avatar: string | null;
      join_approval_required: boolean;
      group_locked: boolean;
    })
  | (ListCommon & {
      type: 'Channel';
      name: string;
      description: string | null;
      creator: User | null;
      is_public: boolean;
      avatar: string | null;
      max_subscribers: number;
    });

/** docs/protocol.md#notifications */
export interface Notification {
  id: Id;
  notification_type: 'NEW_MESSAGE' | 'REPLY' | 'REACTION';
  message: Message;
}

/** The messages of a roommessages.dispatch. */
export interface RoomMessagesData {
  room_id: Id;
  messages: Message[];
}

/** roommessages.dispatch: everything, a page, or by seq (docs/protocol.md#pagination). */
export interface RoomMessagesPage {
  data: RoomMessagesData;
  // paginate
  has_next?: boolean;
  has_previous?: boolean;
  next_page_number?: number | null;
  prev_page_number?: number | null;
  page?: number;
  size?: number;
  // by seq (docs/protocol.md#catch-up)
  after_seq?: number;
  before_seq?: number;
  limit?: number;
  has_more?: boolean;
}

/** reaction.dispatch */
export type ReactionDispatch =
  | { status: 'successful'; type: 'add'; message: Message }
  | { status: 'successful' | 'failed'; action: 'remove'; message: Message };

/** messagemodification.dispatch */
export type MessageModificationDispatch =
  | { status: 'successful'; action: 'update'; message: Message }
  | { status: 'successful'; action: 'delete'; message_ids: Id[] };

/** messagetyping.dispatch */
export interface TypingDispatch {
  username: string;
  room_id: Id;
  user_id: UserId;
}

/** One room of a chat.resync dispatch (docs/protocol.md#resync). */
export interface ResyncRoom {
  room_id: Id;
  /** The room's latest seq, 0 when it has none. */
  seq: number;
}

/** chat.resync (docs/protocol.md#resync). */
export interface ResyncDispatch {
  rooms: ResyncRoom[];
  reason: string;
}

/** The answer to user.search: users whose name matches, one page. */
export interface UserSearchDispatch {
  query: string;
  users: User[];
}

/**
 * presence.dispatch (docs/protocol.md#presence): a user went online or
 * offline; one per room of theirs where their presence is shown.
 */
export interface PresenceDispatch {
  room_id: Id;
  user_id: UserId;
  username: string;
  online: boolean;
  /** When the user was last seen; null when never. */
  last_seen: Timestamp | null;
}

/** One user of presencequery.dispatch. */
export interface UserPresence {
  user_id: UserId;
  username: string;
  online: boolean;
  last_seen: Timestamp | null;
}

/** presencequery.dispatch: the answer to presence.query (docs/protocol.md#presence-query). */
export interface PresenceQueryDispatch {
  /** The room asked about (only for {room_id}). */
  room_id?: Id;
  users: UserPresence[];
}

/**
 * Every dispatch the server sends, by its eventType, with its data
 * (docs/protocol.md#dispatches), plus chat.resync.
 */
export interface DispatchMap {
  'chat.notifications': Record<Id, Notification[]>;
  'message.dispatch': Message;
  'messagedelivered.dispatch': Message[];
  'readreceipt.dispatch': Message | Message[];
  'reaction.dispatch': ReactionDispatch;
  'messagetyping.dispatch': TypingDispatch;
  'messagemodification.dispatch': MessageModificationDispatch;
  'roomcreate.dispatch': RoomDetail;
  'roomlist.dispatch': RoomListItem[];
  'roominfo.dispatch': RoomDetail;
  'roommessages.dispatch': RoomMessagesPage;
  'roomaddmembers.dispatch': { room: RoomDetail; new_members: string[]; added_by: string };
  'roomremovemembers.dispatch': { room: RoomDetail; removed_members: string[]; removed_by: string };
  'roomexit.dispatch': { room: RoomDetail; message: string };
  'roomdelete.dispatch': { room_id: Id };
  'roomupdate.dispatch': RoomDetail;
  'chat.resync': ResyncDispatch;
  'usersearch.dispatch': UserSearchDispatch;
  'presence.dispatch': PresenceDispatch;
  'presencequery.dispatch': PresenceQueryDispatch;
}

/** The name of a known dispatch. */
export type DispatchType = keyof DispatchMap;

/** A dispatch frame as it arrives: {"eventType": ..., "data": ...}. */
export interface Dispatch {
  eventType: string;
  data: unknown;
  request_id?: string;
}

/** The detail of an error envelope: a string, a list, or {field: [messages]}. */
export type ErrorDetail = string | string[] | Record<string, string[]>;

/** The 16 events of docs/protocol.md#events (and user.search, presence.query). */
export type EventType =
  | 'message.send'
  | 'message.acknowledged'
  | 'message.read'
  | 'message.react'
  | 'message.typing'
  | 'message.modify'
  | 'room.create'
  | 'room.list'
  | 'room.info'
  | 'room.messages'
  | 'room.join'
  | 'room.leave'
  | 'room.add_members'
  | 'room.remove_members'
  | 'room.modify'
  | 'session.heartbeat'
  | 'user.search'
  | 'presence.query';

/** room.create input (docs/protocol.md#room-create). */
export type CreateRoomInput =
  | { type: 'OneToOneChat'; participants: [UserId]; extra_fields?: Record<string, unknown> }
  | {
      type: 'GroupChat';
      name: string;
      description?: string;
      participants?: UserId[];
      extra_fields?: Record<string, unknown>;
    }
  | {
      type: 'Channel';
      name: string;
      description?: string;
      subscribers?: UserId[];
      extra_fields?: Record<string, unknown>;
    };

/** room.messages query: everything, a page, or by seq (docs/protocol.md#room-messages). */
export type RoomMessagesQuery =
  | Record<string, never>
  | { paginate: { page: number; size: number } }
  | { after_seq: number; limit?: number }
  | { before_seq: number; limit?: number };

/** room.modify actions (docs/protocol.md#room-modify). */
export type RoomModifyAction =
  | 'update'
  | 'delete'
  | 'add_admin'
  | 'remove_admin'
  | 'add_moderator'
  | 'remove_moderator'
  | 'add_permission'
  | 'remove_permission';

/** The explicit permissions of docs/protocol.md#permissions. */
export type Permission =
  | 'can_add_new_participants'
  | 'can_remove_participants'
  | 'can_add_new_subscribers'
  | 'can_remove_subscribers'
  | 'can_send_messages';
