// An agent's icon. Houston definitions name a Lucide icon ("Users", "Target", …); the names
// used by the public agent definitions are mapped here and anything else shows a robot.

import {
  Bot,
  Briefcase,
  Calculator,
  Code,
  FileText,
  Headset,
  Mail,
  Megaphone,
  MessageSquare,
  Scale,
  Search,
  ShoppingCart,
  Sparkles,
  Target,
  Users,
  type LucideIcon,
} from 'lucide-react';

const ICONS: Record<string, LucideIcon> = {
  Bot,
  Briefcase,
  Calculator,
  Code,
  FileText,
  Headset,
  Mail,
  Megaphone,
  MessageSquare,
  Scale,
  Search,
  ShoppingCart,
  Sparkles,
  Target,
  Users,
};

export function AgentIcon({ name, size = 28 }: { name?: string | null; size?: number }) {
  const Icon = (name && ICONS[name]) || Bot;
  return <Icon size={size} aria-hidden="true" focusable="false" />;
}
