// An agent's icon. Houston definitions name a Lucide icon ("Users", "Target", …). The names
// that the public agent definitions use are mapped here, and any other name shows a robot.

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
  BookOpen,
  Calendar,
  ChartLine,
  Database,
  Globe,
  Heart,
  Shield,
  TrendingUp,
  Wrench,
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
  BookOpen,
  Calendar,
  ChartLine,
  Database,
  Globe,
  Heart,
  Shield,
  TrendingUp,
  Wrench,
};

export function AgentIcon({ name, size = 28 }: { name?: string | null; size?: number }) {
  const Icon = (name && ICONS[name]) || Bot;
  return <Icon size={size} aria-hidden="true" focusable="false" />;
}
